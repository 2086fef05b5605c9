// C entry points for weight files (bioesp_weights_*) and LoRA descriptions.
#include <cstring>
#include <memory>

#include "api/guard.h"
#include "api/options.h"
#include "hub/pull.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "lora/detect.h"

#include "api/weights_handle.h"

using namespace bioesp;

namespace bioesp {
io::OpenOptions open_options(const bioesp_weights_options* options) {
  auto opt = read_checked(BIOESP_OPTIONS_WEIGHTS, options, bioesp_weights_options_init);
  io::OpenOptions o;
  if (opt.variant) o.variant = opt.variant;
  o.to_diffusers = opt.to_diffusers != 0;
  if (opt.config_dir) o.config_dir = opt.config_dir;
  o.log = c_logger(opt.log, opt.log_user);
  return o;
}
}  // namespace bioesp

namespace {
const io::Tensor& tensor_at(const bioesp_weights* w, size_t index) {
  require(w != nullptr, "weights handle is NULL");
  if (index >= w->set.tensors.size())
    fail(BIOESP_ERR_INVALID_ARGUMENT, "tensor index " + std::to_string(index) + " out of range (" +
                                          std::to_string(w->set.tensors.size()) + " tensors)");
  return w->set.tensors[index];
}
}  // namespace

extern "C" {

const char* bioesp_dtype_name(bioesp_dtype dtype) {
  if (dtype < BIOESP_DTYPE_F32 || dtype > BIOESP_DTYPE_BOOL) return "?";
  return io::dtype_name(static_cast<io::DType>(dtype));
}

void bioesp_weights_options_init(bioesp_weights_options* o) {
  if (!o) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
}

bioesp_status bioesp_weights_open(const char* path, const bioesp_weights_options* options,
                                  bioesp_weights** out) {
  return guard([&] {
    require(path && out, "path and out must not be NULL");
    *out = nullptr;
    auto w = std::make_unique<bioesp_weights>();
    w->set = io::open_weights(hub::resolve_model(path, nullptr), open_options(options));
    w->lora = lora::describe(w->set);
    *out = w.release();
  });
}

void bioesp_weights_close(bioesp_weights* weights) { delete weights; }

bioesp_status bioesp_weights_format_of(const bioesp_weights* w, bioesp_weights_format* out) {
  return guard([&] {
    require(w && out, "weights and out must not be NULL");
    *out = w->set.format;
  });
}

bioesp_status bioesp_weights_count(const bioesp_weights* w, size_t* out) {
  return guard([&] {
    require(w && out, "weights and out must not be NULL");
    *out = w->set.tensors.size();
  });
}

bioesp_status bioesp_weights_tensor(const bioesp_weights* w, size_t index, bioesp_tensor_info* out) {
  return guard([&] {
    const io::Tensor& t = tensor_at(w, index);
    if (t.shape.size() > BIOESP_MAX_DIMS)
      fail(BIOESP_ERR_UNSUPPORTED, t.name + " has more than " + std::to_string(BIOESP_MAX_DIMS) + " dimensions");
    bioesp_tensor_info info{};
    info.name = t.name.c_str();
    info.component = t.component.c_str();
    info.dtype = static_cast<bioesp_dtype>(t.dtype);
    info.ndim = t.shape.size();
    for (size_t i = 0; i < t.shape.size(); ++i) info.shape[i] = t.shape[i];
    info.nbytes = t.nbytes;
    write_output(out, info);
  });
}

bioesp_status bioesp_weights_find(const bioesp_weights* w, const char* component, const char* name,
                                  size_t* index) {
  return guard([&] {
    require(w && name && index, "weights, name and index must not be NULL");
    const io::Tensor* t = w->set.find(component ? component : "", name);
    if (!t) fail(BIOESP_ERR_NOT_FOUND, std::string("no tensor named ") + name);
    *index = static_cast<size_t>(t - w->set.tensors.data());
  });
}

bioesp_status bioesp_weights_read(const bioesp_weights* w, size_t index, bioesp_dtype dtype, void* dst,
                                  size_t size) {
  return guard([&] {
    const io::Tensor& t = tensor_at(w, index);
    require(dst != nullptr, "dst must not be NULL");
    require(dtype >= BIOESP_DTYPE_F32 && dtype <= BIOESP_DTYPE_BOOL, "unknown dtype");
    auto to = static_cast<io::DType>(dtype);
    size_t n = static_cast<size_t>(t.numel());
    if (!t.has_data() && n > 0) fail(BIOESP_ERR_UNSUPPORTED, t.name + " has no data: the handle describes an architecture");
    if (size / io::dtype_size(to) < n)
      fail(BIOESP_ERR_INVALID_ARGUMENT, t.name + " needs " + std::to_string(n * io::dtype_size(to)) +
                                            " bytes, the buffer has " + std::to_string(size));
    io::read_elements(t, to, dst);
  });
}

bioesp_status bioesp_weights_metadata_count(const bioesp_weights* w, size_t* out) {
  return guard([&] {
    require(w && out, "weights and out must not be NULL");
    *out = w->set.metadata.size();
  });
}

bioesp_status bioesp_weights_metadata(const bioesp_weights* w, size_t index, const char** key,
                                      const char** value) {
  return guard([&] {
    require(w && key && value, "weights, key and value must not be NULL");
    if (index >= w->set.metadata.size()) fail(BIOESP_ERR_INVALID_ARGUMENT, "metadata index out of range");
    *key = w->set.metadata[index].first.c_str();
    *value = w->set.metadata[index].second.c_str();
  });
}

bioesp_status bioesp_weights_save_safetensors(const bioesp_weights* w, const char* component,
                                              const char* path) {
  return guard([&] {
    require(w && path, "weights and path must not be NULL");
    std::string want = component ? component : "";
    std::vector<const io::Tensor*> chosen;
    std::string first_component;
    for (const auto& t : w->set.tensors) {
      if (!want.empty() && t.component != want) continue;
      if (want.empty() && !chosen.empty() && t.component != first_component)
        fail(BIOESP_ERR_INVALID_ARGUMENT, "the weights hold several components (" + first_component + ", " +
                                              t.component + ", ...): name one");
      if (chosen.empty()) first_component = t.component;
      if (!t.has_data() && t.numel() > 0) fail(BIOESP_ERR_UNSUPPORTED, "an architecture handle has no data to save");
      chosen.push_back(&t);
    }
    if (chosen.empty()) fail(BIOESP_ERR_NOT_FOUND, "no tensors in component '" + want + "'");
    io::write_safetensors(path, chosen, w->set.metadata);
  });
}

bioesp_status bioesp_weights_lora_info(const bioesp_weights* w, bioesp_lora_info* out) {
  return guard([&] {
    require(w != nullptr, "weights must not be NULL");
    bioesp_lora_info info{};
    info.flavour = w->lora.flavour;
    info.rank = w->lora.rank;
    info.num_targets = w->lora.targets.size();
    write_output(out, info);
  });
}

bioesp_status bioesp_weights_lora_target(const bioesp_weights* w, size_t index, const char** module) {
  return guard([&] {
    require(w && module, "weights and module must not be NULL");
    if (index >= w->lora.targets.size()) fail(BIOESP_ERR_INVALID_ARGUMENT, "LoRA target index out of range");
    *module = w->lora.targets[index].c_str();
  });
}

}  // extern "C"
