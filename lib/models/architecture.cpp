#include "models/architecture.h"

#include "config/infer.h"
#include "config/model_config.h"
#include "core/error.h"
#include "io/file.h"
#include "models/clip_text.h"
#include "models/layers.h"
#include "models/loader.h"
#include "models/unet.h"
#include "models/vae.h"

namespace bioesp::models {

namespace {

void add_expected(io::WeightSet& out, const std::string& component, const std::string& config_text,
                  const std::string& what) {
  // Lazily allocated parameters: nothing is touched, so nothing becomes resident.
  std::shared_ptr<torch::nn::Module> m;
  if (component == "unet") m = build_checked<UNet2DConditionModel>(config::parse_unet(config_text, what), what).ptr();
  else if (component == "vae") m = build_checked<AutoencoderKL>(config::parse_vae(config_text, what), what).ptr();
  else if (component == "text_encoder" || component == "text_encoder_2")
    m = build_checked<CLIPTextModel>(config::parse_clip_text(config_text, what), what).ptr();
  else return;
  for (const auto& [name, shape] : expected_tensors(*m)) {
    io::Tensor t;
    t.component = component;
    t.name = name;
    t.shape = shape;
    out.tensors.push_back(std::move(t));
  }
}

const char* const kComponents[] = {"unet", "vae", "text_encoder", "text_encoder_2"};

}  // namespace

io::WeightSet expected_weights(const std::string& path, const io::OpenOptions& options) {
  io::WeightSet out;
  out.format = BIOESP_FORMAT_DIFFUSERS;
  auto from_folder = [&](const std::string& dir) {
    bool any = false;
    for (const char* c : kComponents) {
      std::string cfg = dir + "/" + c + "/config.json";
      if (!io::exists(cfg)) continue;
      add_expected(out, c, io::read_text_file(cfg), cfg);
      any = true;
    }
    if (!any) fail(BIOESP_ERR_NOT_FOUND, dir + ": no component configs (unet/config.json, ...)");
  };
  if (io::is_directory(path)) {
    from_folder(path);
  } else if (!options.config_dir.empty()) {
    from_folder(options.config_dir);
  } else {
    io::OpenOptions o = options;
    o.to_diffusers = true;
    io::WeightSet actual = io::open_weights(path, o);
    for (const char* c : kComponents) {
      bool present = false;
      for (const auto& t : actual.tensors) present = present || t.component == c;
      if (present) add_expected(out, c, config::infer_config(actual, c), path + " (" + c + ", inferred)");
    }
  }
  out.sort();
  return out;
}

}  // namespace bioesp::models
