#include "train/scratch.h"

#include <nlohmann/json.hpp>
#include <cstdio>

#include "core/error.h"
#include "io/file.h"
#include "pipeline/pipeline.h"
#include "text/bpe_builder.h"
#include "text/clip_tokenizer.h"
#include "train/dataset.h"

namespace bioesp::train {
namespace {

using nlohmann::ordered_json;

ordered_json read_config(const std::string& path) {
  if (!io::is_file(path)) fail(BIOESP_ERR_NOT_FOUND, path + ": missing (a new model needs every component's config)");
  auto j = ordered_json::parse(io::read_text_file(path), nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail(BIOESP_ERR_FORMAT, path + ": not a JSON object");
  return j;
}

void write_json(const std::string& path, const ordered_json& j) {
  io::write_text_file(path, j.dump(2) + "\n");
}

void remove_tree(const std::string& path) {
  if (io::is_directory(path)) {
    for (const auto& n : io::list_directory(path)) remove_tree(path + "/" + n);
    std::remove(path.c_str());
  } else {
    std::remove(path.c_str());
  }
}

}  // namespace

std::string new_model(const NewModelOptions& o) {
  if (o.out.empty()) fail(BIOESP_ERR_INVALID_ARGUMENT, "no output folder given");
  if (io::exists(o.out)) fail(BIOESP_ERR_INVALID_ARGUMENT, o.out + ": already exists; a new model goes into a new folder");
  auto unet = read_config(o.configs + "/unet/config.json");
  auto vae = read_config(o.configs + "/vae/config.json");
  auto te = read_config(o.configs + "/text_encoder/config.json");
  auto sched = read_config(o.configs + "/scheduler/scheduler_config.json");
  const int vocab_size = o.vocab_size > 0 ? o.vocab_size : te.value("vocab_size", 49408);

  const std::vector<std::string> texts = captions(o.data, DatasetOptions{});

  // Everything is written into a sibling folder that is renamed into place at the end.
  const std::string part = o.out + ".part";
  if (io::exists(part)) fail(BIOESP_ERR_INVALID_ARGUMENT, part + ": left by an interrupted run; remove it first");
  try {
    const int size = text::build_clip_bpe(texts, vocab_size, part + "/tokenizer");
    text::ClipTokenizer tok(part + "/tokenizer");
    te["vocab_size"] = size;
    te["bos_token_id"] = tok.bos();
    te["eos_token_id"] = tok.eos();
    te["pad_token_id"] = tok.pad();
    for (const auto& [name, j] : {std::pair<std::string, const ordered_json*>{"unet", &unet}, {"vae", &vae}, {"text_encoder", &te}}) {
      io::make_directories(part + "/" + name);
      write_json(part + "/" + name + "/config.json", *j);
    }
    io::make_directories(part + "/scheduler");
    write_json(part + "/scheduler/scheduler_config.json", sched);
    if (io::is_file(o.configs + "/model_index.json")) io::copy_file(o.configs + "/model_index.json", part + "/model_index.json");
    pipeline::LoadOptions lo;
    lo.log = o.log;
    auto sd = pipeline::StableDiffusion::create(part, te.dump(), unet.dump(), vae.dump(), lo, o.seed);
    sd->save(part, part, torch::kFloat32);
    if (o.log)
      o.log(BIOESP_LOG_INFO, "vocabulary of " + std::to_string(size) + " tokens from " + std::to_string(texts.size()) + " captions");
    if (std::rename(part.c_str(), o.out.c_str()) != 0) fail(BIOESP_ERR_IO, o.out + ": cannot move the new model into place");
  } catch (...) {
    remove_tree(part);
    throw;
  }
  return o.out;
}

}  // namespace bioesp::train
