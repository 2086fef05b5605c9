#define _GNU_SOURCE
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

const char* ref_dir(void) {
  const char* d = getenv("BIOESP_REFERENCE_DIR");
  if (!d || !*d) {
    fprintf(stderr, "BIOESP_REFERENCE_DIR is not set (run the tests through ctest)\n");
    exit(1);
  }
  return d;
}

const char* path_join(const char* a, const char* b) {
  static char bufs[8][4096];
  static int next = 0;
  char* out = bufs[next++ % 8];
  snprintf(out, 4096, "%s/%s", a, b);
  return out;
}

static char tmp_path[256];
static void remove_tmp(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_path);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_path);
}

const char* temp_dir(void) {
  if (!tmp_path[0]) {
    snprintf(tmp_path, sizeof tmp_path, "/tmp/bioesp-test-XXXXXX");
    if (!mkdtemp(tmp_path)) {
      perror("mkdtemp");
      exit(1);
    }
    atexit(remove_tmp);
  }
  return tmp_path;
}

void write_file(const char* path, const void* data, size_t n) {
  FILE* f = fopen(path, "wb");
  if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
    perror(path);
    exit(1);
  }
}

int file_exists(const char* path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static void put16(FILE* f, unsigned v) { fputc(v & 0xff, f); fputc((v >> 8) & 0xff, f); }
static void put32(FILE* f, unsigned long v) { put16(f, v & 0xffff); put16(f, (v >> 16) & 0xffff); }

void write_zip(const char* path, const zip_entry* e, size_t n) {
  FILE* f = fopen(path, "wb");
  if (!f) { perror(path); exit(1); }
  unsigned long* offsets = calloc(n, sizeof *offsets);
  unsigned long* crcs = calloc(n, sizeof *crcs);
  for (size_t i = 0; i < n; ++i) {
    size_t len = strlen(e[i].name);
    offsets[i] = (unsigned long)ftell(f);
    crcs[i] = crc32(0L, (const Bytef*)e[i].data, (uInt)e[i].size);
    put32(f, 0x04034b50); put16(f, 20); put16(f, 0); put16(f, 0); put16(f, 0); put16(f, 0);
    put32(f, crcs[i]); put32(f, e[i].size); put32(f, e[i].size); put16(f, len); put16(f, 0);
    fwrite(e[i].name, 1, len, f);
    fwrite(e[i].data, 1, e[i].size, f);
  }
  unsigned long cd = (unsigned long)ftell(f);
  for (size_t i = 0; i < n; ++i) {
    size_t len = strlen(e[i].name);
    put32(f, 0x02014b50); put16(f, 20); put16(f, 20); put16(f, 0); put16(f, 0); put16(f, 0); put16(f, 0);
    put32(f, crcs[i]); put32(f, e[i].size); put32(f, e[i].size); put16(f, len); put16(f, 0); put16(f, 0);
    put16(f, 0); put16(f, 0); put32(f, 0); put32(f, offsets[i]);
    fwrite(e[i].name, 1, len, f);
  }
  unsigned long cd_size = (unsigned long)ftell(f) - cd;
  put32(f, 0x06054b50); put16(f, 0); put16(f, 0); put16(f, n); put16(f, n);
  put32(f, cd_size); put32(f, cd); put16(f, 0);
  fclose(f);
  free(offsets);
  free(crcs);
}

unsigned char* make_safetensors(const char* header, size_t data_size, size_t* out_size) {
  size_t h = strlen(header);
  unsigned char* buf = calloc(1, 8 + h + data_size);
  for (int i = 0; i < 8; ++i) buf[i] = (unsigned char)((unsigned long long)h >> (8 * i));
  memcpy(buf + 8, header, h);
  for (size_t i = 0; i < data_size; ++i) buf[8 + h + i] = (unsigned char)i;
  *out_size = 8 + h + data_size;
  return buf;
}
