#include "lora/adapter.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/strings.h"
#include "io/single_file.h"
#include "models/layers.h"
#include "models/loader.h"

namespace bioesp::lora {

namespace {

// alpha / rank, or 1 when the file gives no alpha.
double factor(const Pair& p) { return p.alpha > 0 ? p.alpha / static_cast<double>(p.down.shape.at(0)) : 1.0; }

// Whether the matrices fit a layer of weight shape `w`: a Linear [out, in] takes down [r, in]
// (or [r, in, 1, 1]); a Conv2d [out, in, k, k] takes down [r, in, k, k] as kohya and diffusers
// train it (a 2-D one only for k = 1); up is [out, r] or [out, r, 1, 1].
bool fits(at::IntArrayRef w, const std::vector<int64_t>& d, const std::vector<int64_t>& u) {
  if ((d.size() != 2 && d.size() != 4) || (u.size() != 2 && u.size() != 4)) return false;
  if (d[0] != u[1] || d[1] != w[1] || u[0] != w[0]) return false;
  if (u.size() == 4 && (u[2] != 1 || u[3] != 1)) return false;
  const int64_t kh = w.size() == 4 ? w[2] : 1, kw = w.size() == 4 ? w[3] : 1;
  return d.size() == 4 ? d[2] == kh && d[3] == kw : kh == 1 && kw == 1;
}

// The component a kohya stem belongs to (lora_unet_, lora_te_/lora_te1_, lora_te2_), "" if none.
std::string kohya_component(const std::string& stem) {
  if (stem.rfind("lora_unet_", 0) == 0) return "unet";
  if (stem.rfind("lora_te2_", 0) == 0) return "text_encoder_2";
  if (stem.rfind("lora_te_", 0) == 0 || stem.rfind("lora_te1_", 0) == 0) return "text_encoder";
  return "";
}

// Beyond float16's range a LoRA turns every image black (or NaN) instead of failing.
constexpr double kMaxMagnitude = 65504;

// A LoRA matrix's values, refused by name unless they are floating point, finite and within range.
torch::Tensor checked_values(const io::Tensor& t) {
  if (!io::dtype_is_float(t.dtype))
    fail(BIOESP_ERR_FORMAT, t.name + ": LoRA weights must be floating point, not " + io::dtype_name(t.dtype));
  torch::Tensor v = models::to_torch(t);
  if (v.numel() == 0) return v;
  auto f = v.to(torch::kFloat32);
  if (!torch::isfinite(f).all().item<bool>()) fail(BIOESP_ERR_FORMAT, t.name + ": holds NaN or infinite values");
  double m = f.abs().max().item<double>();
  if (m > kMaxMagnitude)
    fail(BIOESP_ERR_FORMAT, t.name + ": holds values up to " + std::to_string(m) + ", beyond the ±65504 of float16");
  return v;
}

}  // namespace

std::string kohya_name(const std::string& component, const std::string& module) {
  std::string prefix = component == "unet" ? "lora_unet_" : component == "text_encoder" ? "lora_te_" : "lora_te2_";
  std::string name = prefix + module;
  std::replace(name.begin() + static_cast<std::ptrdiff_t>(prefix.size()), name.end(), '.', '_');
  return name;
}

Parsed parse(const io::WeightSet& set, const std::map<std::string, std::vector<std::string>>& modules) {
  // kohya names: lora_unet_<underscored>, lora_te_<underscored> (lora_te1_/lora_te2_ for SDXL),
  // the UNet's by diffusers' names or, as kohya's SDXL files have them, by the original ones.
  std::map<std::string, std::pair<std::string, std::string>> kohya;  // prefix+underscored → (component, module)
  for (const auto& [component, names] : modules) {
    if (component == "unet")
      for (const auto& [n, original] : io::ldm_unet_names(names)) kohya[kohya_name(component, original)] = {component, n};
    for (const auto& n : names) {
      kohya[kohya_name(component, n)] = {component, n};
      if (component == "text_encoder") kohya["lora_te1_" + kohya_name(component, n).substr(8)] = {component, n};
      // kohya drops transformers' text_model. prefix in some versions
      if (n.rfind("text_model.", 0) == 0) kohya[kohya_name(component, n.substr(11))] = {component, n};
    }
  }
  Parsed out;
  std::vector<std::string> unknown;
  std::map<std::string, double> alphas;  // "component/module" → alpha
  for (const auto& t : set.tensors) {
    std::string key = t.name, component, module;
    bool down = false;
    if (take_suffix(key, ".alpha")) {
      auto it = kohya.find(key);
      std::string target = it != kohya.end() ? it->second.first + "/" + it->second.second : key;
      if (t.numel() != 1 || !io::dtype_is_float(t.dtype)) fail(BIOESP_ERR_FORMAT, t.name + ": alpha is not a scalar");
      float a;
      io::read_elements(t, io::DType::F32, &a);
      if (!std::isfinite(a) || std::fabs(a) > kMaxMagnitude) fail(BIOESP_ERR_FORMAT, t.name + ": alpha " + std::to_string(a) + " is not a usable scale");
      alphas[target] = a;
      if (it == kohya.end()) unknown.push_back(t.name);
      continue;
    }
    // diffusers (UNet and text encoder), PEFT, kohya
    if (take_suffix(key, ".lora.down.weight") || take_suffix(key, ".lora_linear_layer.down.weight") ||
        take_suffix(key, ".lora_A.weight") || take_suffix(key, ".lora_down.weight")) {
      down = true;
    } else if (!(take_suffix(key, ".lora.up.weight") || take_suffix(key, ".lora_linear_layer.up.weight") ||
                 take_suffix(key, ".lora_B.weight") || take_suffix(key, ".lora_up.weight"))) {
      unknown.push_back(t.name);
      continue;
    }
    auto k = kohya.find(key);
    if (k != kohya.end()) {
      component = k->second.first;
      module = k->second.second;
    } else if (!kohya_component(key).empty()) {  // a kohya name no layer of the model has
      component = kohya_component(key);
      module = key;
    } else {
      take_prefix(key, "model.diffusion_model.");  // the workshop's legacy checkpoint
      take_prefix(key, "base_model.model.");       // PEFT
      for (const char* c : {"unet", "text_encoder_2", "text_encoder"})
        if (take_prefix(key, std::string(c) + ".")) {
          component = c;
          break;
        }
      if (component.empty()) component = "unet";  // PEFT files of a bare UNet
      module = key;
    }
    auto& p = out[component][module];
    (down ? p.down : p.up) = t;
  }
  if (!unknown.empty()) {
    std::ostringstream o;
    o << unknown.size() << " keys of the LoRA file match no layer of this model:";
    for (size_t i = 0; i < unknown.size() && i < 20; ++i) o << "\n  " << unknown[i];
    if (unknown.size() > 20) o << "\n  ...";
    fail(BIOESP_ERR_MISMATCH, o.str());
  }
  for (auto& [component, pairs] : out)
    for (auto& [module, p] : pairs) {
      if (!p.down.has_data() || !p.up.has_data())
        fail(BIOESP_ERR_FORMAT, "LoRA for " + component + "." + module + " lacks its " + (p.down.has_data() ? "up" : "down") + " matrix");
      auto a = alphas.find(component + "/" + module);
      if (a != alphas.end()) p.alpha = a->second;
    }
  return out;
}

void attach(torch::nn::Module& root, const std::map<std::string, Pair>& pairs, const std::string& name, double scale,
            torch::Device device, torch::ScalarType dtype, const std::string& what) {
  std::map<std::string, std::shared_ptr<torch::nn::Module>> layers;
  for (const auto& item : root.named_modules()) layers[item.key()] = item.value();
  std::vector<std::string> missing, mismatched;
  std::vector<std::pair<models::Adaptable*, models::Adapter>> planned;
  for (const auto& [module, p] : pairs) {
    auto it = layers.find(module);
    models::Adaptable* layer = it == layers.end() ? nullptr : models::adaptable(it->second);
    if (!layer) {
      missing.push_back(module);
      continue;
    }
    auto w = layer->weight_shape();
    if (!fits(w, p.down.shape, p.up.shape)) {
      mismatched.push_back(module + ": down " + models::shape_text(p.down.shape) + " up " + models::shape_text(p.up.shape) +
                           " do not fit the layer's " + models::shape_text(w));
      continue;
    }
    models::Adapter a;
    a.name = name;
    a.down = checked_values(p.down).to(device, dtype);
    a.up = checked_values(p.up).to(device, dtype);
    if (w.size() == 2) {  // 1×1 convolution matrices on a Linear
      a.down = a.down.flatten(1);
      a.up = a.up.flatten(1);
    }
    if (a.down.data_ptr() == p.down.data) a.down = a.down.clone();
    if (a.up.data_ptr() == p.up.data) a.up = a.up.clone();
    a.factor = factor(p);
    a.scale = scale;
    planned.emplace_back(layer, std::move(a));
  }
  if (!missing.empty() || !mismatched.empty()) {
    std::ostringstream o;
    o << what << ": the LoRA does not fit this model";
    if (!missing.empty()) o << "\n  " << missing.size() << " target modules not found:";
    for (size_t i = 0; i < missing.size() && i < 20; ++i) o << "\n    " << missing[i];
    if (!mismatched.empty()) o << "\n  " << mismatched.size() << " with other shapes:";
    for (size_t i = 0; i < mismatched.size() && i < 20; ++i) o << "\n    " << mismatched[i];
    fail(BIOESP_ERR_MISMATCH, o.str());
  }
  detach(root, name);
  for (auto& [layer, a] : planned) layer->adapters.push_back(std::move(a));
}

bool set_scale(torch::nn::Module& root, const std::string& name, double scale) {
  bool found = false;
  for (const auto& item : root.named_modules())
    if (auto* l = models::adaptable(item.value()))
      for (auto& a : l->adapters)
        if (a.name == name) {
          a.scale = scale;
          found = true;
        }
  return found;
}

bool detach(torch::nn::Module& root, const std::string& name) {
  bool found = false;
  for (const auto& item : root.named_modules())
    if (auto* l = models::adaptable(item.value())) {
      auto& v = l->adapters;
      auto before = v.size();
      v.erase(std::remove_if(v.begin(), v.end(), [&](const models::Adapter& a) { return a.name == name; }), v.end());
      found = found || v.size() != before;
    }
  return found;
}

}  // namespace bioesp::lora
