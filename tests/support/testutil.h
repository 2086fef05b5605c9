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
  int deflate; /* compressed (method 8) rather than stored */
} zip_entry;
/* tiny-sd1 with golden/fast's LCM UNet (time_cond_proj_dim: the guidance as an embedding, no CFG
 * batch) in its place: a model folder of links in temp_dir(), made on the first call. */
const char* tiny_lcm_model(void);

/* Writes a zip archive; entries are stored unless they ask to be deflated. */
void write_zip(const char* path, const zip_entry* entries, size_t n);

/* Writes a 16×16 JPEG of one colour in libjpeg's `color_space` (JCS_CMYK, JCS_GRAYSCALE or
 * JCS_RGB) with `components` channels, baseline or progressive. */
void write_test_jpeg(const char* path, int color_space, int components, const uint8_t* colour, int progressive);

/* Writes a PNG of `height` rows of 8-bit RGB given `rows_given` rows of pixels (3 × width bytes
 * each); a PNG with fewer rows than it claims is truncated on purpose. */
void write_test_png(const char* path, uint32_t width, uint32_t height, const uint8_t* pixels, uint32_t rows_given);

/* Builds a safetensors image: header JSON text, then `data_size` bytes of data. Returns a malloc'd
 * buffer of *out_size bytes. */
unsigned char* make_safetensors(const char* header, size_t data_size, size_t* out_size);

#endif
