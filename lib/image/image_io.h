// Image files: PNG through libpng, JPEG through libjpeg(-turbo)'s jpeglib API. Built only with
// BIOESP_WITH_IMAGES; without it every call fails with BIOESP_ERR_UNSUPPORTED.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace bioesp::image {

struct Image {
  uint32_t width = 0, height = 0, channels = 0;  // channels: 3 (RGB) or 4 (RGBA)
  std::vector<uint8_t> pixels;
  std::vector<std::pair<std::string, std::string>> text;  // PNG tEXt/iTXt chunks
  int orientation = 1;  // EXIF orientation still to apply (1: upright, as read_image returns)
};

// The most pixels decoded from one file (8192 × 8192): a larger image is refused before any
// pixel buffer is allocated, unless `reduce` lets a larger baseline JPEG decode at 1/2, 1/4 or
// 1/8 of its size (libjpeg's DCT scaling; for pictures headed for a smaller square).
constexpr uint64_t kMaxPixels = uint64_t{1} << 26;

// PNG or JPEG, told apart by their signatures; always 8-bit RGB or RGBA, upright (a JPEG's EXIF
// orientation applied, as diffusers' load_image does). Only regular files are read.
Image read_image(const std::string& path, bool reduce = false);
// Turns pixels stored with EXIF orientation `img.orientation` upright.
Image apply_orientation(Image img);
// A name ending in .png, .jpg or .jpeg (any case): what folders of pictures are scanned for.
bool is_image_file_name(const std::string& name);
// Written atomically; text goes into iTXt chunks (UTF-8).
void write_png(const std::string& path, const Image& image);
void write_jpeg(const std::string& path, const Image& image, int quality);

}  // namespace bioesp::image
