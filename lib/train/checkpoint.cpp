#include "train/checkpoint.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/strings.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "models/loader.h"

namespace bioesp::train {

namespace {

using Meta = std::vector<std::pair<std::string, std::string>>;

std::string meta_get(const Meta& m, const std::string& key) {
  for (const auto& [k, v] : m)
    if (k == key) return v;
  fail(BIOESP_ERR_FORMAT, "checkpoint lacks '" + key + "'");
}

const char* mode_name(const Setup& s) { return s.vae ? "vae" : s.full ? "full" : "lora"; }

// Checkpoint file names in `dir`, oldest first (the step is zero-padded).
std::vector<std::string> checkpoints(const std::string& dir) {
  std::vector<std::string> out;
  if (!io::is_directory(dir)) return out;
  for (const auto& n : io::list_directory(dir))
    if (starts_with(n, "checkpoint-") && ends_with(n, ".safetensors")) out.push_back(n);
  return out;
}

}  // namespace

std::string model_fingerprint(pipeline::StableDiffusion& sd) {
  uint64_t h = kFnv1aSeed;
  torch::NoGradGuard no_grad;
  for (const auto& p : sd.unet()->named_parameters()) {
    h = fnv1a(p.key(), h);
    for (auto d : p.value().sizes()) h = fnv1a(std::to_string(d), h);
  }
  char buf[96];
  std::snprintf(buf, sizeof buf, "%016llx:%.6e:%.6e", static_cast<unsigned long long>(h),
                sd.unet()->conv_in->weight.to(torch::kDouble).sum().item<double>(),
                sd.unet()->conv_out->weight.to(torch::kDouble).abs().sum().item<double>());
  return buf;
}

Checkpoints::Checkpoints(std::string dir, std::string fingerprint, int kept, io::Logger log)
    : dir_(std::move(dir)), fingerprint_(std::move(fingerprint)), kept_(kept), log_(std::move(log)) {}

void Checkpoints::save(Trainer& tr, const RunState& st, at::Generator& gen) const {
  std::vector<io::Tensor> tensors;
  auto& adam = tr.optimizer();
  for (size_t i = 0; i < tr.parameters().size(); ++i) {
    const auto& [name, t] = tr.parameters()[i];
    tensors.push_back(models::from_torch("param/" + name, t));
    tensors.push_back(models::from_torch("exp_avg/" + name, adam.exp_avg()[i]));
    tensors.push_back(models::from_torch("exp_avg_sq/" + name, adam.exp_avg_sq()[i]));
  }
  tensors.push_back(models::from_torch("rng", gen.get_state()));
  if (st.data.order.defined()) tensors.push_back(models::from_torch("order/data", st.data.order));
  if (st.prior.order.defined()) tensors.push_back(models::from_torch("order/prior", st.prior.order));
  const auto& s = tr.setup();
  Meta meta{{"bioesp.checkpoint", "1"},
            {"step", std::to_string(st.step)},
            {"optimizer_steps", std::to_string(adam.steps())},
            {"data.position", std::to_string(st.data.position)},
            {"data.epoch", std::to_string(st.data.epoch)},
            {"prior.position", std::to_string(st.prior.position)},
            {"prior.epoch", std::to_string(st.prior.epoch)},
            {"model", fingerprint_},
            {"mode", mode_name(s)},
            {"rank", std::to_string(s.rank)},
            {"scaler.scale", std::to_string(tr.scaler().state_scale())},
            {"scaler.growth", std::to_string(tr.scaler().state_growth())}};
  io::make_directories(dir_);
  char name[64];
  std::snprintf(name, sizeof name, "checkpoint-%06d.safetensors", st.step);
  const std::string path = dir_ + "/" + name;
  io::write_safetensors(path, tensors, meta);  // atomic: a failure leaves the previous ones intact
  if (log_) log_(BIOESP_LOG_INFO, "checkpoint " + path);
  auto all = checkpoints(dir_);
  for (size_t i = 0; kept_ > 0 && i + kept_ < all.size(); ++i) std::remove((dir_ + "/" + all[i]).c_str());
}

bool Checkpoints::resume(Trainer& tr, RunState& st, at::Generator& gen) const {
  auto all = checkpoints(dir_);
  if (all.empty()) {
    if (log_) log_(BIOESP_LOG_INFO, "no checkpoint in " + dir_ + "; starting from the beginning");
    return false;
  }
  const std::string path = dir_ + "/" + all.back();
  load(path, tr, st, gen);
  if (log_) log_(BIOESP_LOG_INFO, "resuming from " + path + " at step " + std::to_string(st.step));
  return true;
}

void Checkpoints::load(const std::string& path, Trainer& tr, RunState& st, at::Generator& gen) const {
  auto set = io::read_safetensors(path);
  const auto& s = tr.setup();
  if (meta_get(set.metadata, "mode") != mode_name(s))
    fail(BIOESP_ERR_MISMATCH, path + ": this checkpoint is from a " + meta_get(set.metadata, "mode") + " training");
  if (meta_get(set.metadata, "model") != fingerprint_)
    fail(BIOESP_ERR_MISMATCH, path + ": this checkpoint was trained from another base model");
  if (!s.full && !s.vae && meta_get(set.metadata, "rank") != std::to_string(s.rank))
    fail(BIOESP_ERR_MISMATCH, path + ": this checkpoint has LoRA rank " + meta_get(set.metadata, "rank") + ", not " +
                                  std::to_string(s.rank));
  auto get = [&](const std::string& name, const torch::Tensor& like) {
    const io::Tensor* t = set.find("", name);
    if (!t) fail(BIOESP_ERR_MISMATCH, path + ": lacks " + name + " (other LoRA targets?)");
    auto v = models::to_torch(*t);
    if (v.sizes() != like.sizes())
      fail(BIOESP_ERR_MISMATCH, path + ": " + name + " has another shape than this training's");
    return v;
  };
  size_t expected = 0;
  for (const auto& t : set.tensors) expected += starts_with(t.name, "param/");
  if (expected != tr.parameters().size())
    fail(BIOESP_ERR_MISMATCH, path + ": it trains " + std::to_string(expected) + " tensors, this run " +
                                  std::to_string(tr.parameters().size()) + " (other targets or text-encoder setting?)");
  torch::NoGradGuard no_grad;
  auto& adam = tr.optimizer();
  for (size_t i = 0; i < tr.parameters().size(); ++i) {
    const auto& [name, p] = tr.parameters()[i];
    const_cast<torch::Tensor&>(p).copy_(get("param/" + name, p));
    adam.exp_avg()[i].copy_(get("exp_avg/" + name, p));
    adam.exp_avg_sq()[i].copy_(get("exp_avg_sq/" + name, p));
  }
  adam.set_steps(std::stoll(meta_get(set.metadata, "optimizer_steps")));
  const io::Tensor* rng = set.find("", "rng");
  if (!rng) fail(BIOESP_ERR_FORMAT, path + ": lacks the random generator state");
  gen.set_state(models::to_torch(*rng).clone());
  st.step = std::stoi(meta_get(set.metadata, "step"));
  for (auto [cursor, key] : {std::pair<DataOrder*, std::string>{&st.data, "data"}, {&st.prior, "prior"}}) {
    if (const io::Tensor* o = set.find("", "order/" + key)) cursor->order = models::to_torch(*o).clone();
    cursor->position = std::stoll(meta_get(set.metadata, key + ".position"));
    cursor->epoch = std::stoll(meta_get(set.metadata, key + ".epoch"));
  }
  tr.scaler().restore(std::stod(meta_get(set.metadata, "scaler.scale")), std::stoi(meta_get(set.metadata, "scaler.growth")));
}

TrainLog::TrainLog(std::string path, int resumed_step) : path_(std::move(path)) {
  if (resumed_step <= 0 || !io::is_file(path_)) return;
  std::istringstream in(io::read_text_file(path_));
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("step", 1 << 30) <= resumed_step) lines_ += line + "\n";
  }
}

void TrainLog::add(int step, double loss, double lr, double grad_norm) {
  char line[160];
  std::snprintf(line, sizeof line, "{\"step\": %d, \"loss\": %.6g, \"lr\": %.6g, \"grad_norm\": %.6g}\n", step, loss, lr,
                grad_norm);
  lines_ += line;
}

void TrainLog::write() const { io::write_text_file(path_, lines_); }

}  // namespace bioesp::train
