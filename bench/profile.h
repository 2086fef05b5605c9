// bench --profile: where a forward pass spends its time, operator by operator and block by block.
#pragma once

#include <string>

namespace bioesp::bench {

// While alive, records every outermost ATen operator that runs on this thread (its time, and the
// shapes that tell one layer from another) and the user-scope ranges the models open around
// their blocks (down_blocks.0, mid_block, …). Operators inside other operators count in their
// caller, so the operator times add up to the recorded wall time.
class OpProfile {
 public:
  OpProfile();
  ~OpProfile();
  OpProfile(const OpProfile&) = delete;
  OpProfile& operator=(const OpProfile&) = delete;

  // Prints three tables under `title`: by block, by operator, and the `top` costliest layers
  // (operator and shapes); `wall_s` is the pass's measured time, for the share not in operators.
  void print(const std::string& title, double wall_s, int top = 30) const;
};

}  // namespace bioesp::bench
