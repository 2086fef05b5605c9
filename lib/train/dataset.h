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

// [3, R, R] in [-1, 1]: a centre or random square crop, optionally mirrored with probability ½.
torch::Tensor pixels(const Example& e, int resolution, bool random_crop, bool flip, at::Generator& gen);

// FNV-1a of the folder's manifest.jsonl, or of its sorted file names when it has none: recorded
// in the trained LoRA so a model card can name the exact data.
std::string dataset_fingerprint(const std::string& dir);

}  // namespace bioesp::train
