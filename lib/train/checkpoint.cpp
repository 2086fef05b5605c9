#include "train/checkpoint.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <tuple>
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

const char* mode_name(const Setup& s) { return s.vae ? "vae" : s.full ? "full" : "lora"; }

// The step a checkpoint's file name gives ("checkpoint-000012.safetensors": 12), or -1.
int64_t step_of_name(const std::string& name) {
  std::string digits = name;
  if (!take_prefix(digits, "checkpoint-") || !take_suffix(digits, ".safetensors") || digits.empty() ||
      digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos)
    return -1;
  return std::stoll(digits);
}

// Checkpoints in `dir` by step, oldest first: (step, file name).
std::vector<std::pair<int64_t, std::string>> checkpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  if (!io::is_directory(dir)) return out;
  for (const auto& n : io::list_directory(dir))
    if (int64_t step = step_of_name(n); step >= 0) out.emplace_back(step, n);
  std::sort(out.begin(), out.end());
  return out;
}

// A checkpoint's metadata, each value parsed whole and in its range, or a format error naming it.
class Fields {
 public:
  Fields(const Meta& m, std::string path) : m_(m), path_(std::move(path)) {}
  const std::string& text(const std::string& key) const {
    for (const auto& [k, v] : m_)
      if (k == key) return v;
    bad("lacks '" + key + "'");
  }
  int64_t integer(const std::string& key, int64_t lo, int64_t hi) const {
    const std::string& v = text(key);
    errno = 0;
    char* end = nullptr;
    const long long n = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end || errno || n < lo || n > hi)
      bad("'" + key + "' is '" + v + "', not a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
    return n;
  }
  double positive(const std::string& key) const {
    const std::string& v = text(key);
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end || !std::isfinite(d) || !(d > 0)) bad("'" + key + "' is '" + v + "', not a positive number");
    return d;
  }
  [[noreturn]] void bad(const std::string& why) const { fail(BIOESP_ERR_FORMAT, path_ + ": " + why); }

 private:
  const Meta& m_;
  std::string path_;
};

bool fallback_worthy(bioesp_status s) { return s == BIOESP_ERR_FORMAT || s == BIOESP_ERR_IO || s == BIOESP_ERR_UNSUPPORTED; }

}  // namespace

// A checkpoint read whole and checked: nothing of it reaches the trainer before all of it passes.
struct Checkpoints::Snapshot {
  io::WeightSet file;  // the mapping the tensors below point into
  int step = 0;
  int64_t optimizer_steps = 0;
  std::vector<torch::Tensor> params, exp_avg, exp_avg_sq;
  std::vector<torch::Tensor> rngs;  // every rank's, when the run continues exactly
  int64_t data_epoch = 0, data_position = 0, prior_epoch = 0, prior_position = 0;
  double scale = 1;
  int growth = 0;
  std::string restart;  // why the data orders and generators start anew (said in the log)
};

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

OutputFolder::OutputFolder(const std::string& out, const io::Logger& log) {
  const std::string lock = out + "/.train.lock";  // hidden: never published with the result
  lock_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_ < 0) fail(BIOESP_ERR_IO, "cannot create " + lock + ": " + std::strerror(errno));
  if (::flock(lock_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_);
    fail(BIOESP_ERR_IO, out + ": another training is writing to this folder");
  }
  for (const std::string& dir : {out, out + "/checkpoints", out + "/validation"}) {
    if (!io::is_directory(dir)) continue;
    for (const auto& n : io::list_directory(dir))
      if (io::is_temporary_name(n) && std::remove((dir + "/" + n).c_str()) == 0 && log)
        log(BIOESP_LOG_INFO, "removed " + dir + "/" + n + ", left behind by an interrupted write");
  }
}

OutputFolder::~OutputFolder() { ::close(lock_); }

Checkpoints::Checkpoints(std::string dir, std::string fingerprint, int kept, io::Logger log)
    : dir_(std::move(dir)), fingerprint_(std::move(fingerprint)), kept_(kept), log_(std::move(log)) {}

void Checkpoints::save(Trainer& tr, const RunState& st, const std::vector<torch::Tensor>& rngs) const {
  std::vector<io::Tensor> tensors;
  auto& adam = tr.optimizer();
  for (size_t i = 0; i < tr.parameters().size(); ++i) {
    const auto& [name, t] = tr.parameters()[i];
    tensors.push_back(models::from_torch("param/" + name, t));
    tensors.push_back(models::from_torch("exp_avg/" + name, adam.exp_avg()[i]));
    tensors.push_back(models::from_torch("exp_avg_sq/" + name, adam.exp_avg_sq()[i]));
  }
  for (size_t r = 0; r < rngs.size(); ++r) tensors.push_back(models::from_torch("rng/" + std::to_string(r), rngs[r]));
  const auto& s = tr.setup();
  Meta meta{{"bioesp.checkpoint", "2"},
            {"step", std::to_string(st.step)},
            {"optimizer_steps", std::to_string(adam.steps())},
            {"world_size", std::to_string(rngs.size())},
            {"data.size", std::to_string(st.data_size)},
            {"data.epoch", std::to_string(st.data.epoch)},
            {"data.position", std::to_string(st.data.position)},
            {"prior.size", std::to_string(st.prior_size)},
            {"prior.epoch", std::to_string(st.prior.epoch)},
            {"prior.position", std::to_string(st.prior.position)},
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
  for (size_t i = 0; kept_ > 0 && i + kept_ < all.size(); ++i) std::remove((dir_ + "/" + all[i].second).c_str());
}

Checkpoints::Resumed Checkpoints::resume(Trainer& tr, RunState& st, int world, int64_t examples, int64_t prior,
                                         int total) const {
  auto all = checkpoints(dir_);
  if (all.empty()) {
    if (log_) log_(BIOESP_LOG_INFO, "no checkpoint in " + dir_ + "; starting from the beginning");
    return {};
  }
  std::string first_problem;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const std::string path = dir_ + "/" + it->second;
    Snapshot snap;
    try {
      snap = read(path, it->first, tr, world, examples, prior, total);
    } catch (const Error& e) {
      if (!fallback_worthy(e.status())) throw;
      if (first_problem.empty()) first_problem = e.what();
      const bool moved = std::rename(path.c_str(), (path + ".corrupt").c_str()) == 0;
      if (log_)
        log_(BIOESP_LOG_WARNING, std::string(e.what()) + (moved ? "; renamed " + it->second + ".corrupt" : "") +
                                     (std::next(it) != all.rend() ? "; trying the checkpoint before it" : ""));
      continue;
    }
    torch::NoGradGuard no_grad;
    auto& adam = tr.optimizer();
    for (size_t i = 0; i < tr.parameters().size(); ++i) {
      const_cast<torch::Tensor&>(tr.parameters()[i].second).copy_(snap.params[i]);
      adam.exp_avg()[i].copy_(snap.exp_avg[i]);
      adam.exp_avg_sq()[i].copy_(snap.exp_avg_sq[i]);
    }
    adam.set_steps(snap.optimizer_steps);
    tr.scaler().restore(snap.scale, snap.growth);
    st.step = snap.step;
    st.data.epoch = snap.data_epoch, st.data.position = snap.data_position;
    st.prior.epoch = snap.prior_epoch, st.prior.position = snap.prior_position;
    if (log_) {
      log_(BIOESP_LOG_INFO, "resuming from " + path + " at step " + std::to_string(st.step));
      if (!snap.restart.empty())
        log_(BIOESP_LOG_INFO, snap.restart + ": the weights and optimizer state continue; the data order starts a new "
                                             "epoch and the random draws start anew at step " + std::to_string(st.step));
    }
    return {true, std::move(snap.rngs)};
  }
  fail(BIOESP_ERR_FORMAT, "no usable checkpoint in " + dir_ + " (the newest: " + first_problem + ")");
}

Checkpoints::Snapshot Checkpoints::read(const std::string& path, int64_t name_step, Trainer& tr, int world,
                                        int64_t examples, int64_t prior, int total) const {
  Snapshot snap;
  snap.file = io::read_safetensors(path);
  const io::WeightSet& set = snap.file;
  const Fields f(set.metadata, path);
  const std::string format = f.text("bioesp.checkpoint");
  if (format != "1" && format != "2") f.bad("is not a bioesp checkpoint of format 1 or 2");
  const auto& s = tr.setup();
  if (f.text("mode") != mode_name(s))
    fail(BIOESP_ERR_MISMATCH, path + ": this checkpoint is from a " + f.text("mode") + " training");
  if (f.text("model") != fingerprint_)
    fail(BIOESP_ERR_MISMATCH, path + ": this checkpoint was trained from another base model");
  if (!s.full && !s.vae && f.text("rank") != std::to_string(s.rank))
    fail(BIOESP_ERR_MISMATCH, path + ": this checkpoint has LoRA rank " + f.text("rank") + ", not " + std::to_string(s.rank));
  size_t trained = 0;
  for (const auto& t : set.tensors) trained += starts_with(t.name, "param/");
  if (trained != tr.parameters().size())
    fail(BIOESP_ERR_MISMATCH, path + ": it trains " + std::to_string(trained) + " tensors, this run " +
                                  std::to_string(tr.parameters().size()) + " (other targets or text-encoder setting?)");

  snap.step = static_cast<int>(f.integer("step", 1, std::numeric_limits<int>::max()));
  if (snap.step != name_step) f.bad("holds step " + std::to_string(snap.step) + " under the name of step " + std::to_string(name_step));
  if (snap.step > total)
    fail(BIOESP_ERR_MISMATCH, path + ": the checkpoint is at step " + std::to_string(snap.step) + ", past this run's " +
                                  std::to_string(total) + " steps");
  snap.optimizer_steps = f.integer("optimizer_steps", 0, snap.step);
  snap.scale = f.positive("scaler.scale");
  snap.growth = static_cast<int>(f.integer("scaler.growth", 0, std::numeric_limits<int>::max()));

  auto tensor = [&](const std::string& name) -> torch::Tensor {
    const io::Tensor* t = set.find("", name);
    return t ? models::to_torch(*t) : torch::Tensor();
  };
  const std::pair<std::string, std::vector<torch::Tensor>*> kinds[] = {
      {"param/", &snap.params}, {"exp_avg/", &snap.exp_avg}, {"exp_avg_sq/", &snap.exp_avg_sq}};
  for (const auto& [name, p] : tr.parameters()) {
    for (const auto& [kind, into] : kinds) {
      auto v = tensor(kind + name);
      if (!v.defined()) fail(BIOESP_ERR_MISMATCH, path + ": lacks " + kind + name + " (other LoRA targets?)");
      if (v.sizes() != p.sizes())
        fail(BIOESP_ERR_MISMATCH, path + ": " + kind + name + " has another shape than this training's");
      if (v.scalar_type() != p.scalar_type()) f.bad(kind + name + " is " + c10::toString(v.scalar_type()) + ", not float32");
      if (!torch::isfinite(v).all().item<bool>()) f.bad(kind + name + " holds values that are not finite");
      if (kind == "exp_avg_sq/" && (v < 0).any().item<bool>()) f.bad(kind + name + " holds negative values");
      into->push_back(v);
    }
  }
  if (format == "1") {
    snap.restart = path + " is a checkpoint of an earlier bioesp (format 1)";
    snap.data_epoch = f.integer("data.epoch", 0, std::numeric_limits<int32_t>::max()) + 1;
    snap.prior_epoch = f.integer("prior.epoch", 0, std::numeric_limits<int32_t>::max()) + 1;
    return snap;
  }

  // Where the data orders are and every rank's generator: a run of as many processes on as many
  // pictures continues exactly; another one restarts them.
  const int saved_world = static_cast<int>(f.integer("world_size", 1, 1 << 16));
  const auto like = at::detail::createCPUGenerator(0).get_state();
  for (int r = 0; r < saved_world; ++r) {
    auto state = tensor("rng/" + std::to_string(r));
    if (!state.defined()) f.bad("lacks the random generator state of rank " + std::to_string(r));
    if (state.scalar_type() != like.scalar_type() || state.sizes() != like.sizes())
      f.bad("'rng/" + std::to_string(r) + "' is not a CPU random generator state");
    snap.rngs.push_back(state.clone());
  }
  const int64_t data_size = f.integer("data.size", 1, int64_t{1} << 40), prior_size = f.integer("prior.size", 0, int64_t{1} << 40);
  snap.data_epoch = f.integer("data.epoch", 0, std::numeric_limits<int32_t>::max());
  snap.data_position = f.integer("data.position", 0, DataOrder::share(data_size, saved_world));
  snap.prior_epoch = f.integer("prior.epoch", 0, std::numeric_limits<int32_t>::max());
  snap.prior_position = f.integer("prior.position", 0, DataOrder::share(prior_size, saved_world));
  if (saved_world != world) {
    snap.restart = path + " comes from a run of " + std::to_string(saved_world) + " process" + (saved_world > 1 ? "es" : "") +
                   ", this one has " + std::to_string(world);
  } else if (data_size != examples || prior_size != prior) {
    snap.restart = path + " comes from a run on " + std::to_string(data_size) + " instance and " + std::to_string(prior_size) +
                   " class pictures, this one has " + std::to_string(examples) + " and " + std::to_string(prior);
  }
  if (!snap.restart.empty()) {
    snap.rngs.clear();
    snap.data_epoch = snap.data_epoch + 1, snap.data_position = 0;
    snap.prior_epoch = snap.prior_epoch + 1, snap.prior_position = 0;
  }
  return snap;
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
