#define _GNU_SOURCE
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <jpeglib.h>

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

const char* tiny_lcm_model(void) {
  static char dir[4096];
  if (dir[0]) return dir;
  snprintf(dir, sizeof dir, "%s/tiny-lcm", temp_dir());
  const char* parts[] = {"model_index.json", "scheduler", "text_encoder", "tokenizer", "vae", "unet"};
  char from[4096], to[4096];
  if (mkdir(dir, 0700) != 0) {
    perror(dir);
    exit(1);
  }
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; ++i) {
    if (i + 1 < sizeof parts / sizeof parts[0]) snprintf(from, sizeof from, "%s/models/tiny-sd1/%s", ref_dir(), parts[i]);
    else snprintf(from, sizeof from, "%s/golden/fast/unet_lcm", ref_dir());
    snprintf(to, sizeof to, "%s/%s", dir, parts[i]);
    if (symlink(from, to) != 0) {
      perror(to);
      exit(1);
    }
  }
  return dir;
}

static void put16(FILE* f, unsigned v) { fputc(v & 0xff, f); fputc((v >> 8) & 0xff, f); }
static void put32(FILE* f, unsigned long v) { put16(f, v & 0xffff); put16(f, (v >> 16) & 0xffff); }

/* Raw deflate (no zlib header), as zip's method 8 holds it; returns a malloc'd buffer. */
static unsigned char* raw_deflate(const void* data, size_t n, size_t* out_n) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) != Z_OK) exit(1);
  size_t cap = deflateBound(&z, (uLong)n);
  unsigned char* out = malloc(cap);
  z.next_in = (Bytef*)data;
  z.avail_in = (uInt)n;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) exit(1);
  *out_n = z.total_out;
  deflateEnd(&z);
  return out;
}

void write_zip(const char* path, const zip_entry* e, size_t n) {
  FILE* f = fopen(path, "wb");
  if (!f) { perror(path); exit(1); }
  unsigned long* offsets = calloc(n, sizeof *offsets);
  unsigned long* crcs = calloc(n, sizeof *crcs);
  size_t* packed = calloc(n, sizeof *packed);
  for (size_t i = 0; i < n; ++i) {
    size_t len = strlen(e[i].name);
    offsets[i] = (unsigned long)ftell(f);
    crcs[i] = crc32(0L, (const Bytef*)e[i].data, (uInt)e[i].size);
    unsigned char* z = e[i].deflate ? raw_deflate(e[i].data, e[i].size, &packed[i]) : NULL;
    if (!z) packed[i] = e[i].size;
    put32(f, 0x04034b50); put16(f, 20); put16(f, 0); put16(f, e[i].deflate ? 8 : 0); put16(f, 0); put16(f, 0);
    put32(f, crcs[i]); put32(f, packed[i]); put32(f, e[i].size); put16(f, len); put16(f, 0);
    fwrite(e[i].name, 1, len, f);
    fwrite(z ? z : e[i].data, 1, packed[i], f);
    free(z);
  }
  unsigned long cd = (unsigned long)ftell(f);
  for (size_t i = 0; i < n; ++i) {
    size_t len = strlen(e[i].name);
    put32(f, 0x02014b50); put16(f, 20); put16(f, 20); put16(f, 0); put16(f, e[i].deflate ? 8 : 0); put16(f, 0); put16(f, 0);
    put32(f, crcs[i]); put32(f, packed[i]); put32(f, e[i].size); put16(f, len); put16(f, 0); put16(f, 0);
    put16(f, 0); put16(f, 0); put32(f, 0); put32(f, offsets[i]);
    fwrite(e[i].name, 1, len, f);
  }
  unsigned long cd_size = (unsigned long)ftell(f) - cd;
  put32(f, 0x06054b50); put16(f, 0); put16(f, 0); put16(f, n); put16(f, n);
  put32(f, cd_size); put32(f, cd); put16(f, 0);
  fclose(f);
  free(offsets);
  free(crcs);
  free(packed);
}

void write_test_jpeg(const char* path, int color_space, int components, const uint8_t* colour, int progressive) {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  FILE* f = fopen(path, "wb");
  if (!f) { perror(path); exit(1); }
  jpeg_stdio_dest(&c, f);
  c.image_width = 16;
  c.image_height = 16;
  c.input_components = components;
  c.in_color_space = (J_COLOR_SPACE)color_space;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 100, TRUE);
  if (progressive) jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  uint8_t row[16 * 4];
  for (int x = 0; x < 16; ++x) memcpy(row + x * components, colour, (size_t)components);
  while (c.next_scanline < 16) {
    JSAMPROW r = row;
    jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  fclose(f);
}


static void png_chunk(FILE* f, const char* type, const unsigned char* data, size_t n) {
  unsigned char len[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
  fwrite(len, 1, 4, f);
  fwrite(type, 1, 4, f);
  if (n) fwrite(data, 1, n, f);
  uLong c = crc32(0L, (const Bytef*)type, 4);
  if (n) c = crc32(c, data, (uInt)n); /* crc32 of NULL restarts the sum */
  unsigned char crc[4] = {(unsigned char)(c >> 24), (unsigned char)(c >> 16), (unsigned char)(c >> 8), (unsigned char)c};
  fwrite(crc, 1, 4, f);
}

void write_test_png(const char* path, uint32_t width, uint32_t height, const uint8_t* pixels, uint32_t rows_given) {
  size_t row = 1 + (size_t)width * 3, raw_n = row * rows_given;
  unsigned char* raw = calloc(1, raw_n + 1);
  for (uint32_t y = 0; y < rows_given; ++y) memcpy(raw + y * row + 1, pixels + (size_t)y * width * 3, (size_t)width * 3);
  uLongf z_n = compressBound((uLong)raw_n);
  unsigned char* z = malloc(z_n);
  if (compress2(z, &z_n, raw, (uLong)raw_n, 9) != Z_OK) exit(1);
  FILE* f = fopen(path, "wb");
  if (!f) { perror(path); exit(1); }
  fwrite("\x89PNG\r\n\x1a\n", 1, 8, f);
  unsigned char ihdr[13] = {(unsigned char)(width >> 24), (unsigned char)(width >> 16), (unsigned char)(width >> 8), (unsigned char)width,
                            (unsigned char)(height >> 24), (unsigned char)(height >> 16), (unsigned char)(height >> 8), (unsigned char)height,
                            8, 2, 0, 0, 0};
  png_chunk(f, "IHDR", ihdr, 13);
  png_chunk(f, "IDAT", z, z_n);
  png_chunk(f, "IEND", NULL, 0);
  fclose(f);
  free(raw);
  free(z);
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
