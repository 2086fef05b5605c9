// Downloading models into the Hub cache: what a pipeline needs, verified, resumable, offline-aware.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "hub/api.h"

namespace bioesp::hub {

struct PullOptions {
  std::string repo;                  // "org/name" or "org/name@revision"
  std::string revision;              // overrides an @revision in repo; "" keeps it (default main)
  std::vector<std::string> include;  // globs (fnmatch over the whole path); empty: select_files()
  std::string variant;               // "fp16": prefer *.fp16.* weights
  Settings settings;
  // files done / in all, bytes of the current file, its path; false cancels.
  std::function<bool(size_t, size_t, uint64_t, const std::string&)> progress;
};

struct PullResult {
  std::string snapshot;  // the snapshot folder: a ready model folder
  std::string commit;
  size_t downloaded = 0, cached = 0;
  bool from_cache_only = false;  // offline, or the Hub unreachable
};

PullResult pull(const PullOptions& o);

// The files of a repository worth downloading. A diffusers pipeline (model_index.json at the
// top): its configs, tokenizer and scheduler files, and one weights file (or one sharded set) per
// component, safetensors before .bin, the variant's before the plain ones; no top-level
// checkpoints, no safety checker weights; with `components` (the folders its model_index.json
// names), nothing from other folders (SDXL base's vae_1_0/, ONNX and OpenVINO exports). Any other
// repository: everything, but of the same weights in several formats only the safetensors.
std::vector<RemoteFile> select_files(const std::vector<RemoteFile>& tree, const std::string& variant,
                                     const std::set<std::string>& components = {});
// The component folders a model_index.json names: its keys with a [library, class] value (null
// ones included, as diffusers' download takes them), e.g. text_encoder_2 and tokenizer_2 for SDXL.
std::set<std::string> pipeline_components(const std::string& model_index_text, const std::string& what);

// A model path or Hub id as a local path: paths that exist are returned as they are; ids
// ("org/name[@rev]") are pulled (or found in the cache when offline). Other strings are returned
// unchanged for the caller to report.
std::string resolve_model(const std::string& path_or_id, io::Logger log);
// The same for LoRA weights: a repository resolves to its LoRA file.
std::string resolve_lora(const std::string& path_or_id, io::Logger log);

}  // namespace bioesp::hub
