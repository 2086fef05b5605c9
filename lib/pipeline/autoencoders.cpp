#include "pipeline/autoencoders.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/strings.h"
#include "io/file.h"
#include "io/weights.h"
#include "models/loader.h"

namespace bioesp::pipeline {

namespace {

// taesd.py's files name weights by nn.Sequential index: encoder K is diffusers'
// encoder.layers.K, decoder K is decoder.layers.(K-1) (its index 0 is a Clamp).
void rename_original(io::WeightSet& set, const std::string& prefix, int shift, const std::string& file) {
  for (auto& t : set.tensors) {
    const size_t dot = t.name.find('.');
    const std::string index = t.name.substr(0, dot);
    if (dot == std::string::npos || index.empty() || index.size() > 3 ||
        index.find_first_not_of("0123456789") != std::string::npos || std::stoi(index) < shift)
      fail(BIOESP_ERR_MISMATCH, file + ": " + t.name + " is not a weight of TAESD's original layout (layer index, then name)");
    t.name = prefix + std::to_string(std::stoi(index) - shift) + t.name.substr(dot);
    t.component.clear();
  }
}

// The <name>_decoder file of a folder, safetensors before .pth; "" when there is none.
std::string decoder_in(const std::string& dir) {
  std::string pth;
  for (const auto& n : io::list_directory(dir)) {
    if (ends_with(n, "_decoder.safetensors")) return dir + "/" + n;
    if (ends_with(n, "_decoder.pth")) pth = dir + "/" + n;
  }
  return pth;
}

// The encoder beside a decoder file (…decoder… → …encoder…, either extension); "" when absent.
std::string encoder_beside(const std::string& decoder) {
  const size_t slash = decoder.find_last_of('/');
  const size_t at = decoder.rfind("decoder");
  if (at == std::string::npos || (slash != std::string::npos && at < slash)) return "";
  std::string stem = decoder.substr(0, at) + "encoder" + decoder.substr(at + 7);
  stem = stem.substr(0, stem.find_last_of('.'));
  for (const char* ext : {".safetensors", ".pth"})
    if (io::is_file(stem + ext)) return stem + ext;
  return "";
}

Autoencoder load_original_taesd(const std::string& decoder, torch::Device device, torch::ScalarType dtype) {
  auto set = io::open_weights(decoder, {});
  const io::Tensor* first = set.find("", "1.weight");
  if (!first || first->shape.size() != 4)
    fail(BIOESP_ERR_MISMATCH, decoder + ": not a TAESD decoder (taesd.py's starts with a Clamp, then the 3×3 "
                                        "convolution 1.weight)");
  config::TinyVAEConfig c;
  c.latent_channels = static_cast<int>(first->shape[1]);
  rename_original(set, "decoder.layers.", 1, decoder);
  const std::string encoder = encoder_beside(decoder);
  std::string what = decoder;
  if (!encoder.empty()) {
    auto enc = io::open_weights(encoder, {});
    rename_original(enc, "encoder.layers.", 0, encoder);
    for (auto& t : enc.tensors) set.tensors.push_back(std::move(t));
    what += " and " + encoder;
  }
  models::BuildScope scope(torch::TensorOptions().dtype(dtype).device(device));
  Autoencoder a;
  a.tiny = models::AutoencoderTiny(c, !encoder.empty());
  models::load_state(*a.tiny, set, "", what);
  return a;
}

Autoencoder load_diffusers(const std::string& dir, torch::Device device, torch::ScalarType dtype) {
  const std::string text = io::read_text_file(dir + "/config.json");
  auto j = nlohmann::json::parse(config::from_python_json(text), nullptr, false);
  const std::string cls = j.is_object() ? j.value("_class_name", "") : "";
  const std::string what = dir + "/config.json";
  // Some VAEs are published (or copied) with their float16 file alone, as
  // madebyollin/sdxl-vae-fp16-fix's diffusion_pytorch_model.fp16.safetensors.
  io::OpenOptions open;
  if (!io::is_file(dir + "/diffusion_pytorch_model.safetensors") &&
      io::is_file(dir + "/diffusion_pytorch_model.fp16.safetensors"))
    open.variant = "fp16";
  auto weights = io::open_weights(dir, open);
  models::BuildScope scope(torch::TensorOptions().dtype(dtype).device(device));
  Autoencoder a;
  if (cls == "AutoencoderTiny") {
    a.tiny = models::AutoencoderTiny(config::parse_tiny_vae(text, what));
    models::load_state(*a.tiny, weights, "", dir);
  } else if (cls == "AutoencoderKL") {
    a.kl = models::AutoencoderKL(config::parse_vae(text, what));
    models::load_state(*a.kl, weights, "", dir);
  } else {
    fail(BIOESP_ERR_UNSUPPORTED, what + ": _class_name '" + cls + "' is not an autoencoder bioesp draws with "
                                        "(AutoencoderKL or AutoencoderTiny)");
  }
  return a;
}

}  // namespace

Autoencoder load_autoencoder(const std::string& path, torch::Device device, torch::ScalarType dtype) {
  Autoencoder a;
  if (io::is_directory(path)) {
    if (io::is_file(path + "/config.json")) a = load_diffusers(path, device, dtype);
    else if (io::is_file(path + "/vae/config.json")) a = load_diffusers(path + "/vae", device, dtype);
    else if (const std::string d = decoder_in(path); !d.empty()) a = load_original_taesd(d, device, dtype);
    else
      fail(BIOESP_ERR_NOT_FOUND, path + ": no autoencoder here (config.json, vae/config.json or a TAESD "
                                        "<name>_decoder.safetensors / .pth)");
  } else if (io::is_file(path)) {
    a = load_original_taesd(path, device, dtype);
  } else {
    fail(BIOESP_ERR_NOT_FOUND, path + ": no such autoencoder folder or file");
  }
  (a.kl ? static_cast<torch::nn::Module&>(*a.kl) : *a.tiny).eval();
  return a;
}

}  // namespace bioesp::pipeline
