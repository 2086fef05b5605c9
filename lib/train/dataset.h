// Training images: any folder of PNG/JPEG files, or a bioesp dataset (manifest.jsonl with a
// caption per image, or kohya-style <name>.txt captions). Images are decoded once, scaled so the
// short side is the training resolution (Lanczos), and cropped/flipped per step.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "image/image_io.h"
#include "io/weights.h"

namespace bioesp::train {

struct Example {
  std::string path, caption;
  image::Image image;  // RGB, short side = resolution
  uint32_t original_width = 0, original_height = 0;  // as read (SDXL's time ids)
};

struct DatasetOptions {
  int resolution = 512;
  std::string prompt;         // for images without a caption of their own
  bool use_captions = true;   // per-image captions when the folder has them
};

// Unreadable or corrupt images are skipped with a warning; none left is an error.
std::vector<Example> load_examples(const std::string& dir, const DatasetOptions& o, const io::Logger& log);

// The captions of the folder's pictures, as load_examples finds them, without decoding a picture.
std::vector<std::string> captions(const std::string& dir, const DatasetOptions& o);

// Where a crop's top-left corner lies in the picture as the crop shows it (mirrored when it is):
// SDXL's crops_coords_top_left, as diffusers' SDXL scripts flip before they crop.
struct Crop {
  int64_t top = 0, left = 0;
};

// [3, R, R] in [-1, 1]: a centre or random square crop, optionally mirrored with probability ½;
// `crop` receives where it lies.
torch::Tensor pixels(const Example& e, int resolution, bool random_crop, bool flip, at::Generator& gen,
                     Crop* crop = nullptr);

// FNV-1a of the folder's manifest.jsonl, or of its sorted file names when it has none: recorded
// in the trained LoRA so a model card can name the exact data.
std::string dataset_fingerprint(const std::string& dir);

}  // namespace bioesp::train
