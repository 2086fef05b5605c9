#include "io/weights.h"


#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/strings.h"
#include "io/checkpoint.h"
#include "io/file.h"
#include "io/safetensors.h"

namespace bioesp::io {

using nlohmann::json;

namespace {

json read_json(const std::string& path) {
  try {
    return json::parse(read_text_file(path));
  } catch (const json::exception& e) {
    fail(BIOESP_ERR_FORMAT, path + ": malformed JSON: " + e.what());
  }
}

bool has_legacy_pickle_magic(const std::string& path) {
  auto f = open_file(path);
  unsigned char m[3] = {};
  if (f->size() < 3) return false;
  f->read(0, m, 3);
  return m[0] == 0x80 && m[2] == 0x8a;
}

// A component of model_index.json names a folder beside it: a plain name, never a path.
void check_component_name(const std::string& dir, const std::string& name) {
  if (name == "." || name == ".." || name.find('/') != std::string::npos || name.find('\\') != std::string::npos ||
      name.find('\0') != std::string::npos)
    fail(BIOESP_ERR_FORMAT, dir + "/model_index.json: component '" + name +
                                "' is not a folder name inside the model folder (components cannot be paths)");
}

WeightSet read_sharded(const std::string& index_path) {
  json index = read_json(index_path);
  auto map = index.find("weight_map");
  if (!index.is_object() || map == index.end() || !map->is_object())
    fail(BIOESP_ERR_FORMAT, index_path + ": no weight_map object");
  std::string dir = index_path.substr(0, index_path.find_last_of('/') + 1);
  std::vector<std::string> shards;
  for (const auto& [name, file] : map->items()) {
    if (!file.is_string()) fail(BIOESP_ERR_FORMAT, index_path + ": weight_map value of " + name + " is not a file name");
    std::string f = file.get<std::string>();
    if (f.find('/') != std::string::npos || f == "..")
      fail(BIOESP_ERR_FORMAT, index_path + ": shard name '" + f + "' leaves the folder");
    if (std::find(shards.begin(), shards.end(), f) == shards.end()) shards.push_back(f);
  }
  WeightSet set;
  set.format = BIOESP_FORMAT_SHARDED;
  for (const auto& f : shards) {
    WeightSet part = read_safetensors(dir + f);
    for (auto& t : part.tensors) {
      auto want = map->find(t.name);
      if (want == map->end() || want->get<std::string>() != f)
        fail(BIOESP_ERR_FORMAT, dir + f + ": tensor " + t.name + " is not listed for this shard in " + index_path);
      set.tensors.push_back(std::move(t));
    }
  }
  if (set.tensors.size() != map->size())
    fail(BIOESP_ERR_FORMAT, index_path + ": lists " + std::to_string(map->size()) +
                                " tensors but the shards hold " + std::to_string(set.tensors.size()));
  set.sort();
  return set;
}

WeightSet read_file(const std::string& path) {
  if (ends_with(path, ".index.json")) return read_sharded(path);
  if (has_zip_magic(path)) return read_torch_zip(path);
  if (has_legacy_pickle_magic(path))
    fail(BIOESP_ERR_UNSUPPORTED, path + ": legacy (pre-zip) torch.save format; re-save it with a current "
                                        "PyTorch or convert it to safetensors");
  return read_safetensors(path);
}

}  // namespace

std::string component_weights_file(const std::string& dir, const std::string& variant) {
  auto names = list_directory(dir);
  auto pick = [&](const std::string& ext) -> std::string {
    // A file "<stem>[.<variant>]<ext>", preferring the variant when asked.
    std::string plain, with_variant;
    for (const auto& n : names) {
      if (!ends_with(n, ext)) continue;
      std::string stem = n.substr(0, n.size() - ext.size());
      if (!variant.empty() && ends_with(stem, "." + variant)) with_variant = n;
      else if (stem.find('.') == std::string::npos && plain.empty()) plain = n;
    }
    return !with_variant.empty() ? with_variant : plain;
  };
  for (const char* ext : {".safetensors", ".safetensors.index.json", ".bin", ".bin.index.json", ".ckpt"}) {
    std::string f = pick(ext);
    if (!f.empty()) return dir + "/" + f;
  }
  fail(BIOESP_ERR_NOT_FOUND, dir + ": no weights file (*.safetensors, *.bin) in this folder");
}

void read_component(const std::string& dir, const std::string& component, const OpenOptions& o,
                    WeightSet& set) {
  std::string file = component_weights_file(dir, o.variant);
  if (ends_with(file, ".bin.index.json"))
    fail(BIOESP_ERR_UNSUPPORTED, file + ": sharded .bin weights; use the safetensors files");
  WeightSet part = read_file(file);
  if (o.log) o.log(BIOESP_LOG_DEBUG, component + ": " + file);
  for (auto& t : part.tensors) {
    t.component = component;
    set.tensors.push_back(std::move(t));
  }
}

LdmLayout layout_from_configs(const std::string& dir) {
  LdmLayout l;
  auto get = [&](const std::string& file) -> json {
    return exists(dir + "/" + file) ? read_json(dir + "/" + file) : json::object();
  };
  json unet = get("unet/config.json"), vae = get("vae/config.json"), te = get("text_encoder/config.json"),
       te2 = get("text_encoder_2/config.json");
  // diffusers' defaults when keys are absent.
  auto lpb = unet.value("layers_per_block", json(2));
  if (!lpb.is_number_integer())
    fail(BIOESP_ERR_UNSUPPORTED, dir + "/unet/config.json: layers_per_block per block is not supported for single files");
  l.unet_layers_per_block = lpb.get<int>();
  auto up = vae.value("up_block_types", json::array({"UpDecoderBlock2D"}));
  l.vae_num_up_blocks = up.is_array() ? static_cast<int>(up.size()) : 1;
  l.text_encoder_layers = te.value("num_hidden_layers", 12);
  if (te2.contains("num_hidden_layers")) l.text_encoder_2_layers = te2.value("num_hidden_layers", 32);
  return l;
}

WeightSet open_weights(const std::string& path, const OpenOptions& o) {
  if (path.empty()) fail(BIOESP_ERR_INVALID_ARGUMENT, "empty path");
  WeightSet set;
  if (is_directory(path)) {
    set.format = BIOESP_FORMAT_DIFFUSERS;
    if (exists(path + "/model_index.json")) {
      json index = read_json(path + "/model_index.json");
      if (!index.is_object()) fail(BIOESP_ERR_FORMAT, path + "/model_index.json is not an object");
      for (const auto& [name, spec] : index.items()) {
        if (name.empty() || name[0] == '_' || !spec.is_array() || spec.size() != 2 || spec[0].is_null()) continue;
        check_component_name(path, name);
        std::string sub = path + "/" + name;
        if (name == "tokenizer" || name == "tokenizer_2" || name == "scheduler" || name == "feature_extractor") continue;
        if (!is_directory(sub)) fail(BIOESP_ERR_NOT_FOUND, path + ": component folder " + name + " is missing");
        read_component(sub, name, o, set);
      }
    } else {
      read_component(path, "", o, set);
    }
    set.sort();
    return set;
  }
  if (!exists(path)) fail(BIOESP_ERR_IO, "no such file or folder: " + path);
  set = read_file(path);
  if (o.to_diffusers && looks_like_ldm(set)) {
    LdmLayout layout = o.config_dir.empty() ? infer_ldm_layout(set) : layout_from_configs(o.config_dir);
    std::vector<std::string> ignored;
    set = ldm_to_diffusers(set, layout, &ignored);
    if (o.log && !ignored.empty())
      o.log(BIOESP_LOG_INFO, std::to_string(ignored.size()) + " tensors are not weights of the pipeline "
                             "and were left out (first: " + ignored.front() + ")");
  }
  return set;
}

}  // namespace bioesp::io
