#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace bioesp::train {

const std::vector<std::string>& lr_schedule_names() {
  static const std::vector<std::string> names{"constant", "constant_with_warmup", "linear", "cosine",
                                              "cosine_with_restarts", "polynomial"};
  return names;
}

void validate(const LrSchedule& s) {
  const auto& n = lr_schedule_names();
  if (std::find(n.begin(), n.end(), s.name) == n.end())
    fail(BIOESP_ERR_INVALID_ARGUMENT, "unknown learning-rate scheduler '" + s.name +
                                          "' (constant, constant_with_warmup, linear, cosine, cosine_with_restarts, polynomial)");
  if (s.warmup < 0) fail(BIOESP_ERR_INVALID_ARGUMENT, "warmup steps must be ≥ 0");
  if (s.cycles < 1) fail(BIOESP_ERR_INVALID_ARGUMENT, "learning-rate cycles must be ≥ 1");
  if (!(s.power > 0)) fail(BIOESP_ERR_INVALID_ARGUMENT, "polynomial power must be > 0");
}

double learning_rate(const LrSchedule& s, double base, int step) {
  const double t = step, w = s.warmup, total = s.total;
  auto warming = [&] { return s.name != "constant" && step < s.warmup; };
  if (warming()) return base * t / std::max(1.0, w);
  const double progress = (t - w) / std::max(1.0, total - w);
  double f = 1.0;
  if (s.name == "linear") {
    f = std::max(0.0, (total - t) / std::max(1.0, total - w));
  } else if (s.name == "cosine") {
    f = std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * 0.5 * 2.0 * progress)));
  } else if (s.name == "cosine_with_restarts") {
    f = progress >= 1.0 ? 0.0 : std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * std::fmod(s.cycles * progress, 1.0))));
  } else if (s.name == "polynomial") {
    if (base <= s.lr_end) fail(BIOESP_ERR_INVALID_ARGUMENT, "polynomial decay needs a learning rate above its end rate 1e-7");
    if (t > total) return s.lr_end;
    const double remaining = 1.0 - (t - w) / std::max(1.0, total - w);
    return (base - s.lr_end) * std::pow(remaining, s.power) + s.lr_end;
  }
  return base * f;
}

}  // namespace bioesp::train
