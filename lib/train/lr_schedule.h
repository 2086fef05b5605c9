// Learning-rate schedules as diffusers' get_scheduler defines them: a factor on the base rate
// for optimizer step `step` (0 for the first step, as LambdaLR counts).
#pragma once

#include <string>
#include <vector>

namespace bioesp::train {

struct LrSchedule {
  std::string name = "constant";  // constant, constant_with_warmup, linear, cosine,
                                  // cosine_with_restarts, polynomial
  int warmup = 0;                 // warmup steps
  int total = 0;                  // training steps
  int cycles = 1;                 // cosine_with_restarts
  double power = 1.0;             // polynomial
  double lr_end = 1e-7;           // polynomial
};

const std::vector<std::string>& lr_schedule_names();
// Throws BIOESP_ERR_INVALID_ARGUMENT for unknown names or impossible settings.
void validate(const LrSchedule& s);
// The learning rate for `step` given the base rate.
double learning_rate(const LrSchedule& s, double base, int step);

}  // namespace bioesp::train
