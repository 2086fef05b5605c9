// Publishing to the Hub as huggingface_hub's upload_folder does: create the repository, ask
// which files go through LFS (preupload), upload those with the LFS batch API (basic or
// multipart, then verify), and commit everything in one NDJSON commit. Files the Hub already
// holds with the same content are skipped.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "hub/api.h"

namespace bioesp::hub {

struct PushOptions {
  std::string path;            // a LoRA file, or a folder (a training output or a model folder)
  std::string repo;            // org/name
  bool private_repo = false;
  std::string commit_message;  // "" : "Upload with bioesp"
  std::string base_model;      // "" : from the weights' metadata or the cache path they name
  std::string dataset;         // a folder with manifest.jsonl for the credits; "" : the
                               // dataset_manifest.jsonl training left beside the weights
  Settings settings;
  // files done / in all, bytes of the current file, its path; false cancels.
  std::function<bool(size_t, size_t, uint64_t, const std::string&)> progress;
};

struct PushResult {
  std::string commit_url;  // "" when nothing changed
  size_t uploaded = 0, unchanged = 0;
};

PushResult push(const PushOptions& o);

}  // namespace bioesp::hub
