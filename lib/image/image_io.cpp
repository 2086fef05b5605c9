#include "image/image_io.h"

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/error.h"
#include "core/strings.h"
#include "io/file.h"

#ifdef BIOESP_HAVE_IMAGES
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#endif

namespace bioesp::image {

bool is_image_file_name(const std::string& name) {
  const std::string n = to_lower(name);
  return ends_with(n, ".png") || ends_with(n, ".jpg") || ends_with(n, ".jpeg");
}

#ifndef BIOESP_HAVE_IMAGES

Image read_image(const std::string& path, bool) { fail(BIOESP_ERR_UNSUPPORTED, path + ": built without image support"); }
Image apply_orientation(Image img) { return img; }
void write_png(const std::string& path, const Image&) { fail(BIOESP_ERR_UNSUPPORTED, path + ": built without image support"); }
void write_jpeg(const std::string& path, const Image&, int) { fail(BIOESP_ERR_UNSUPPORTED, path + ": built without image support"); }

#else

namespace {

// Buffers are sized in these out-of-line helpers, never inline in a function that called setjmp:
// what such a function keeps in registers is undefined after libpng or libjpeg longjmp out of an
// error, which matters for vectors that are freed as the exception unwinds.
__attribute__((noinline)) void size_pixels(Image& img) {
  img.pixels.resize(static_cast<size_t>(img.width) * img.height * img.channels);
}
__attribute__((noinline)) void size_buffer(std::vector<uint8_t>& v, size_t n) { v.resize(n); }
__attribute__((noinline)) void point_rows(std::vector<png_bytep>& rows, Image& img) {
  rows.resize(img.height);
  for (uint32_t y = 0; y < img.height; ++y) rows[y] = img.pixels.data() + static_cast<size_t>(y) * img.width * img.channels;
}
__attribute__((noinline)) void keep_text(Image& img, png_structp png, png_infop info) {
  png_textp text;
  int n = 0;
  if (png_get_text(png, info, &text, &n) > 0)
    for (int i = 0; i < n; ++i) img.text.emplace_back(text[i].key, std::string(text[i].text ? text[i].text : ""));
}

struct File {
  std::FILE* f;
  explicit File(const std::string& path) : f(io::open_stream(path)) {}
  ~File() { std::fclose(f); }
};

std::string too_large(const std::string& path, uint64_t w, uint64_t h) {
  return path + ": image of " + std::to_string(w) + "×" + std::to_string(h) + " pixels, more than the " +
         std::to_string(kMaxPixels) + " (8192×8192) decoded";
}

// libpng reports errors through longjmp; the message is kept and rethrown after the jump.
struct PngError {
  std::string message;
};

void png_error_fn(png_structp png, png_const_charp msg) {
  static_cast<PngError*>(png_get_error_ptr(png))->message = msg;
  png_longjmp(png, 1);
}
void png_warning_fn(png_structp, png_const_charp) {}

// libpng allocates its rows, zlib state and chunks itself, the chunks at the length they claim
// (1.6.39 checks that claim only for some of them): 8 MiB each at most, or the allocation fails
// (an error, or an ancillary chunk skipped). The pixels are bioesp's, under kMaxPixels.
png_voidp png_bounded_malloc(png_structp, png_alloc_size_t n) { return n <= (8u << 20) ? std::malloc(n) : nullptr; }
void png_free_fn(png_structp, png_voidp p) { std::free(p); }

Image read_png(const std::string& path) {
  File file(path);
  PngError err;
  png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &err, png_error_fn, png_warning_fn, nullptr,
                                             png_bounded_malloc, png_free_fn);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) fail(BIOESP_ERR_OUT_OF_MEMORY, "libpng");
  Image img;
  std::vector<png_bytep> rows;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    fail(BIOESP_ERR_FORMAT, path + ": unreadable PNG: " + err.message);
  }
  png_init_io(png, file.f);
  png_set_user_limits(png, 1 << 15, 1 << 15);
  png_set_chunk_cache_max(png, 1000);  // ancillary chunks kept
  png_read_info(png, info);
  png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  if (static_cast<uint64_t>(w) * h > kMaxPixels) {
    png_destroy_read_struct(&png, &info, nullptr);
    fail(BIOESP_ERR_UNSUPPORTED, too_large(path, w, h));
  }
  int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
  // Everything to 8-bit RGB(A): palettes expand, gray becomes RGB, 16 bits are stripped.
  if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (depth == 16) png_set_strip_16(png);
  if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  img.width = w;
  img.height = h;
  img.channels = png_get_channels(png, info);
  if (img.channels != 3 && img.channels != 4) {
    png_destroy_read_struct(&png, &info, nullptr);
    fail(BIOESP_ERR_UNSUPPORTED, path + ": PNG layout with " + std::to_string(img.channels) + " channels");
  }
  size_pixels(img);
  point_rows(rows, img);
  png_read_image(png, rows.data());
  png_read_end(png, info);
  keep_text(img, png, info);
  png_destroy_read_struct(&png, &info, nullptr);
  return img;
}

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

// libjpeg only warns about a truncated file, or about data that ends (at the next marker) before
// the picture does, and fills the rest with grey; those warnings stop the decode here, so a
// half-downloaded photo, or a few bytes whose header claims 11000² pixels, never pass for an image.
// Other warnings (extraneous bytes, common in camera files) pass, as they do in PIL.
void jpeg_truncation_is_error(j_common_ptr cinfo, int level) {
  if (level < 0 && (cinfo->err->msg_code == JWRN_JPEG_EOF || cinfo->err->msg_code == JWRN_HIT_MARKER))
    jpeg_error_exit(cinfo);
}

// The EXIF Orientation tag (1–8) of an APP1 marker, or 1.
int exif_orientation(const uint8_t* d, size_t n) {
  if (n < 14 || std::memcmp(d, "Exif\0\0", 6) != 0) return 1;
  d += 6, n -= 6;
  const bool le = d[0] == 'I' && d[1] == 'I';
  if (!le && !(d[0] == 'M' && d[1] == 'M')) return 1;
  auto u16 = [&](size_t o) -> uint32_t { return o + 2 > n ? 0 : le ? d[o] | d[o + 1] << 8 : d[o] << 8 | d[o + 1]; };
  auto u32 = [&](size_t o) -> uint32_t {
    return o + 4 > n ? 0 : le ? d[o] | d[o + 1] << 8 | d[o + 2] << 16 | uint32_t(d[o + 3]) << 24
                              : uint32_t(d[o]) << 24 | d[o + 1] << 16 | d[o + 2] << 8 | d[o + 3];
  };
  const size_t ifd = u32(4);
  if (ifd + 2 > n) return 1;
  const uint32_t count = u16(ifd);
  for (uint32_t i = 0; i < count; ++i) {
    const size_t e = ifd + 2 + 12 * static_cast<size_t>(i);
    if (e + 12 > n) break;
    if (u16(e) == 0x0112) {
      uint32_t v = u16(e + 8);
      return v >= 1 && v <= 8 ? static_cast<int>(v) : 1;
    }
  }
  return 1;
}

Image read_jpeg(const std::string& path, bool reduce) {
  File file(path);
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_exit;
  err.mgr.emit_message = jpeg_truncation_is_error;
  Image img;
  std::vector<uint8_t> row;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    fail(BIOESP_ERR_FORMAT, path + ": unreadable JPEG: " + err.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, file.f);
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&cinfo, TRUE);
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next)
    if (m->marker == JPEG_APP0 + 1 && img.orientation == 1) img.orientation = exif_orientation(m->data, m->data_length);
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;  // gray and YCbCr become RGB
  // The size its header claims, checked before the decoder allocates anything for it. Progressive
  // files keep every coefficient of the full size in memory, so only baseline ones are reduced.
  cinfo.scale_num = 1;
  for (cinfo.scale_denom = 1;; cinfo.scale_denom *= 2) {
    jpeg_calc_output_dimensions(&cinfo);
    if (static_cast<uint64_t>(cinfo.output_width) * cinfo.output_height <= kMaxPixels) break;
    if (!reduce || cinfo.progressive_mode || cinfo.scale_denom == 8) {
      std::string why = too_large(path, cinfo.image_width, cinfo.image_height);
      jpeg_destroy_decompress(&cinfo);
      fail(BIOESP_ERR_UNSUPPORTED, why);
    }
  }
  jpeg_start_decompress(&cinfo);
  img.width = cinfo.output_width;
  img.height = cinfo.output_height;
  img.channels = 3;
  size_pixels(img);
  size_buffer(row, static_cast<size_t>(img.width) * cinfo.output_components);
  const bool inverted = cmyk && cinfo.saw_Adobe_marker;  // Adobe writes CMYK inverted
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW r = row.data();
    uint8_t* out = img.pixels.data() + static_cast<size_t>(cinfo.output_scanline) * img.width * 3;
    jpeg_read_scanlines(&cinfo, &r, 1);
    if (!cmyk) {
      std::memcpy(out, row.data(), row.size());
      continue;
    }
    for (uint32_t x = 0; x < img.width; ++x) {
      const uint8_t* p = row.data() + 4 * x;
      int k = inverted ? p[3] : 255 - p[3];
      for (int c = 0; c < 3; ++c) {
        int v = inverted ? p[c] : 255 - p[c];
        out[3 * x + c] = static_cast<uint8_t>(v * k / 255);
      }
    }
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return img;
}

void check(const Image& img, const std::string& path) {
  if (img.width == 0 || img.height == 0 || (img.channels != 3 && img.channels != 4) ||
      img.pixels.size() != static_cast<size_t>(img.width) * img.height * img.channels)
    fail(BIOESP_ERR_INVALID_ARGUMENT, path + ": not an 8-bit RGB or RGBA image");
}

}  // namespace

Image read_image(const std::string& path, bool reduce) {
  unsigned char magic[8] = {};
  {
    File f(path);
    if (std::fread(magic, 1, 8, f.f) < 3) fail(BIOESP_ERR_FORMAT, path + ": too short to be an image");
  }
  if (std::memcmp(magic, "\x89PNG\r\n\x1a\n", 8) == 0) return read_png(path);
  if (magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) return apply_orientation(read_jpeg(path, reduce));
  fail(BIOESP_ERR_UNSUPPORTED, path + ": not a PNG or JPEG file");
}

Image apply_orientation(Image img) {
  const int o = img.orientation;
  if (o <= 1 || o > 8) return img;
  const uint32_t W = img.width, H = img.height, c = img.channels;
  const bool swap = o >= 5;
  Image out;
  out.width = swap ? H : W;
  out.height = swap ? W : H;
  out.channels = c;
  out.text = std::move(img.text);
  out.pixels.resize(img.pixels.size());
  for (uint32_t y = 0; y < out.height; ++y)
    for (uint32_t x = 0; x < out.width; ++x) {
      uint32_t sx = x, sy = y;  // the source pixel of output (x, y)
      switch (o) {
        case 2: sx = W - 1 - x; break;
        case 3: sx = W - 1 - x, sy = H - 1 - y; break;
        case 4: sy = H - 1 - y; break;
        case 5: sx = y, sy = x; break;
        case 6: sx = y, sy = H - 1 - x; break;
        case 7: sx = W - 1 - y, sy = H - 1 - x; break;
        case 8: sx = W - 1 - y, sy = x; break;
      }
      std::memcpy(&out.pixels[(static_cast<size_t>(y) * out.width + x) * c], &img.pixels[(static_cast<size_t>(sy) * W + sx) * c], c);
    }
  return out;
}

void write_png(const std::string& path, const Image& img) {
  check(img, path);
  std::vector<png_text> text(img.text.size());
  io::write_file_atomically(path, [&](std::FILE* f) {
    PngError err;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, png_error_fn, png_warning_fn);
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    if (!info) fail(BIOESP_ERR_OUT_OF_MEMORY, "libpng");
    if (setjmp(png_jmpbuf(png))) {
      png_destroy_write_struct(&png, &info);
      fail(BIOESP_ERR_IO, path + ": cannot write PNG: " + err.message);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, img.width, img.height, 8, img.channels == 4 ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    for (size_t i = 0; i < img.text.size(); ++i) {
      text[i].compression = PNG_ITXT_COMPRESSION_NONE;
      text[i].key = const_cast<char*>(img.text[i].first.c_str());
      text[i].text = const_cast<char*>(img.text[i].second.c_str());
      text[i].text_length = 0;
      text[i].itxt_length = img.text[i].second.size();
      text[i].lang = nullptr;
      text[i].lang_key = nullptr;
    }
    if (!text.empty()) png_set_text(png, info, text.data(), static_cast<int>(text.size()));
    png_write_info(png, info);
    for (uint32_t y = 0; y < img.height; ++y)
      png_write_row(png, img.pixels.data() + static_cast<size_t>(y) * img.width * img.channels);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    if (std::ferror(f)) fail(BIOESP_ERR_IO, "cannot write " + path);
  });
}

void write_jpeg(const std::string& path, const Image& img, int quality) {
  check(img, path);
  if (quality < 1 || quality > 100) fail(BIOESP_ERR_INVALID_ARGUMENT, "JPEG quality must be 1..100");
  std::vector<uint8_t> rgb(static_cast<size_t>(img.width) * 3);
  io::write_file_atomically(path, [&](std::FILE* f) {
    jpeg_compress_struct cinfo;
    JpegError err;
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_error_exit;
    if (setjmp(err.jump)) {
      jpeg_destroy_compress(&cinfo);
      fail(BIOESP_ERR_IO, path + ": cannot write JPEG: " + err.message);
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = img.width;
    cinfo.image_height = img.height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
      const uint8_t* src = img.pixels.data() + static_cast<size_t>(cinfo.next_scanline) * img.width * img.channels;
      for (uint32_t x = 0; x < img.width; ++x) std::memcpy(&rgb[3 * x], src + x * img.channels, 3);  // alpha dropped
      JSAMPROW r = rgb.data();
      jpeg_write_scanlines(&cinfo, &r, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    if (std::ferror(f)) fail(BIOESP_ERR_IO, "cannot write " + path);
  });
}

#endif

}  // namespace bioesp::image
