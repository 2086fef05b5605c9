// Preparing a folder of images for training: decode (EXIF orientation, palettes, 16-bit, alpha
// over a background), square by centre crop or padding — never stretched — Lanczos to the training
// size, captions, exact and near-duplicate detection (SHA-1, 64-bit difference hash), and the
// manifest and attribution carried over from a fetched dataset.
#pragma once

#include <array>
#include <functional>
#include <string>
#include <vector>

#include "dataset/fetch.h"
#include "image/image_io.h"
#include "image/resize.h"

namespace bioesp::dataset {

struct PrepareOptions {
  std::string in, out;
  int size = 512;                         // a multiple of 8
  std::string crop = "center";            // center | attention (the busiest square) | pad
  std::array<uint8_t, 3> background{255, 255, 255};  // padding and transparency
  std::string caption;                    // "" : each image's own caption (manifest), else its name
  bool caption_from_metadata = false;     // append the species / object name from the manifest
  int near_duplicate_distance = 4;        // difference-hash bits; < 0: exact duplicates only
  io::Logger log;
  std::function<bool(size_t, size_t, const std::string&)> progress;  // false cancels
};

struct PrepareReport {
  size_t prepared = 0;
  std::vector<Skipped> skipped;  // unreadable, duplicate, near-duplicate: with the reason
};

PrepareReport prepare(const PrepareOptions& o);

// 64-bit difference hash of an image (9×8 grey, left-right gradients).
uint64_t difference_hash(const image::Image& img);
// The square training image: composited over `background`, cropped ("center", "attention") or
// padded ("pad"), resized.
image::Image square(const image::Image& img, int size, const std::string& crop, const std::array<uint8_t, 3>& background);
// The square window along the long side with the most edge energy.
image::Box attention_square(const image::Image& img);

}  // namespace bioesp::dataset
