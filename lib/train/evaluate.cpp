#include "train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "core/error.h"
#include "runtime/cpu_memory.h"
#include "train/dataset.h"
#include "train/trainer.h"

namespace bioesp::train {

namespace {

void check(const EvaluateOptions& o, int64_t train_timesteps) {
  auto bad = [](const std::string& m) { fail(BIOESP_ERR_INVALID_ARGUMENT, m); };
  if (o.data.empty()) bad("data must be set: a folder of captioned pictures");
  if (o.classify < 0 || o.classify == 1)
    bad("classify must be 0 (the loss alone) or at least 2 captions, not " + std::to_string(o.classify));
  if (o.timesteps < 1 || o.timesteps > train_timesteps)
    bad("timesteps must be 1 to " + std::to_string(train_timesteps) + ", not " + std::to_string(o.timesteps));
  if (o.noises < 1 || o.noises > 1000) bad("noises must be 1 to 1000, not " + std::to_string(o.noises));
}

// Fisher–Yates on the generator's raw draws: the same order from every standard library
// (std::shuffle's is the library's own).
void shuffle(std::vector<std::string>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

// The right caption and k − 1 others of the pool, drawn and ordered by the generator.
std::vector<std::string> candidates(const std::string& right, const std::vector<std::string>& pool, int k,
                                    const std::string& pool_dir, std::mt19937_64& rng) {
  std::vector<std::string> c;
  for (const auto& p : pool)
    if (p != right && std::find(c.begin(), c.end(), p) == c.end()) c.push_back(p);
  if (c.size() + 1 < static_cast<size_t>(k))
    fail(BIOESP_ERR_INVALID_ARGUMENT, "classify " + std::to_string(k) + " needs " + std::to_string(k - 1) +
                                          " captions other than '" + right + "', and " + pool_dir + " has " +
                                          std::to_string(c.size()) + " (name a dataset with more as captions)");
  shuffle(c, rng);
  c.resize(k - 1);
  c.push_back(right);
  shuffle(c, rng);
  return c;
}

}  // namespace

Evaluation evaluate(pipeline::StableDiffusion& sd, const EvaluateOptions& o) {
  torch::NoGradGuard no_grad;
  runtime::CpuMemoryScope memory;
  auto schedule = noise_schedule(sd);
  const int64_t T = schedule->config().num_train_timesteps;
  check(o, T);
  DatasetOptions d;
  d.resolution = static_cast<int>(sd.unet()->config().sample_size * sd.latent_factor());
  const auto examples = load_examples(o.data, d, o.log);
  std::vector<std::string> pool;
  if (o.classify) {
    if (!o.captions.empty()) pool = captions(o.captions, d);
    else for (const auto& e : examples) pool.push_back(e.caption);
  }
  const auto device = sd.device();
  at::Generator unused = at::detail::createCPUGenerator(0);
  auto latent = [&](const Example& e, Crop* crop) {
    return posterior(sd, pixels(e, d.resolution, false, false, unused, crop).unsqueeze(0)).first *
           sd.vae()->config().scaling_factor;
  };
  // The fixed noises, the same for every picture and every caption.
  at::Generator gen = at::detail::createCPUGenerator(o.seed);
  const auto shape = latent(examples.front(), nullptr).sizes().vec();
  std::vector<torch::Tensor> noises;
  std::vector<int64_t> steps;
  for (int i = 0; i < o.timesteps; ++i)
    for (int j = 0; j < o.noises; ++j) {
      steps.push_back(static_cast<int64_t>((i + 0.5) * T / o.timesteps));
      noises.push_back(at::randn(shape, gen).to(device));
    }

  std::mt19937_64 rng(o.seed);
  Evaluation out;
  int correct = 0;
  for (const auto& e : examples) {
    PictureEvaluation p;
    p.path = e.path;
    p.caption = e.caption;
    p.candidates = o.classify ? candidates(e.caption, pool, o.classify, o.captions.empty() ? o.data : o.captions, rng)
                              : std::vector<std::string>{e.caption};
    // The captions as training encodes them (SDXL: with the centre crop's time ids).
    const auto text = sd.encode_prompts(p.candidates, 0);
    const int64_t k = text.embeds.size(0);
    Crop crop;
    auto x = latent(e, &crop).expand({k, -1, -1, -1});
    const auto time_ids = sd.sdxl() ? training_time_ids(static_cast<int>(e.original_width), static_cast<int>(e.original_height),
                                                        crop.top, crop.left, d.resolution)
                                    : torch::Tensor();
    auto total = torch::zeros({k}, torch::kDouble);
    for (size_t i = 0; i < steps.size(); ++i) {
      auto t = torch::full({k}, steps[i], torch::TensorOptions().dtype(torch::kLong).device(device));
      total += denoising_errors(sd, *schedule, x, noises[i].expand({k, -1, -1, -1}), t, text, time_ids).cpu().to(torch::kDouble);
    }
    total /= static_cast<double>(steps.size());
    for (int64_t i = 0; i < k; ++i) {
      p.losses.push_back(total[i].item<double>());
      if (p.losses[i] < p.losses[p.chosen] * (1 - kTie)) p.chosen = static_cast<size_t>(i);
      if (p.candidates[i] == e.caption) p.loss = p.losses[i];
    }
    p.correct = p.candidates[p.chosen] == e.caption;
    correct += p.correct;
    out.loss += p.loss / static_cast<double>(examples.size());
    if (o.log)
      o.log(BIOESP_LOG_INFO, e.path + ": loss " + std::to_string(p.loss) + (o.classify ? (p.correct ? ", classified" : ", read as '" + p.candidates[p.chosen] + "'") : ""));
    out.pictures.push_back(std::move(p));
  }
  out.accuracy = o.classify ? static_cast<double>(correct) / static_cast<double>(examples.size())
                            : std::numeric_limits<double>::quiet_NaN();
  return out;
}

}  // namespace bioesp::train
