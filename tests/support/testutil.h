/* Helpers shared by the C tests: temporary folders, files, a minimal stored-zip writer (to
 * build torch.save-shaped archives), and the reference data location. */
#ifndef BIOESP_TESTUTIL_H
#define BIOESP_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* ../shared/reference, from the BIOESP_REFERENCE_DIR environment variable (set by CTest). */
const char* ref_dir(void);
/* snprintf into a static rotating buffer. */
const char* path_join(const char* a, const char* b);
/* A fresh temporary folder, removed at exit. */
const char* temp_dir(void);
void write_file(const char* path, const void* data, size_t n);
int file_exists(const char* path);

typedef struct zip_entry {
  const char* name;
  const void* data;
  size_t size;
} zip_entry;
/* Writes a zip archive with stored (uncompressed) entries. */
void write_zip(const char* path, const zip_entry* entries, size_t n);

/* Builds a safetensors image: header JSON text, then `data_size` bytes of data. Returns a malloc'd
 * buffer of *out_size bytes. */
unsigned char* make_safetensors(const char* header, size_t data_size, size_t* out_size);

#endif
