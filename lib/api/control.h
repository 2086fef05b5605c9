// What bioesp_generate_options asks of ControlNets, masks and outpainting, as the pipeline's
// options; and the bioesp_controlnet handle.
#pragma once

#include <string>
#include <vector>

#include "bioesp.h"
#include "pipeline/pipeline.h"

struct bioesp_controlnet {
  bioesp::models::ControlNetModel net{nullptr};
  std::string path;  // as given: recorded with the images
};

namespace bioesp::api {

// A caller's image, checked (`what` names it in errors) and copied.
image::Image copy_image(const bioesp_image& img, const char* what);
// An init image as generate takes it: RGB (gray repeated, alpha dropped as PIL's convert("RGB")
// drops it) in [-1, 1], [3, H, W], cropped to multiples of 8.
torch::Tensor init_tensor(const image::Image& img);

// A ControlNet for `sd` (its device and dtype), checked against its UNet.
models::ControlNetModel load_controlnet(pipeline::StableDiffusion& sd, const std::string& path, const io::Logger& log);

// What a request sets beyond the pipeline's options.
struct ImageRequest {
  std::vector<std::string> paths;  // per control: a ControlNet to load when the job runs, or ""
  std::vector<std::pair<std::string, std::string>> recorded;  // settings kept with the images, when set
};

// Sets the generation's init image, controls (their nets, except those `paths` names), mask and
// outpainting from `o`, copying every image.
ImageRequest set_images(const bioesp_generate_options& o, pipeline::GenerateOptions& g);

}  // namespace bioesp::api
