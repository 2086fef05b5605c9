#include "profile.h"

#include <ATen/record_function.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <vector>

namespace bioesp::bench {

namespace {

using Clock = std::chrono::steady_clock;

struct Total {
  double s = 0;
  int64_t calls = 0;
};

struct Frame {
  bool user = false;   // a block's range, not an operator
  bool outer = false;  // an outermost operator: the one whose time counts
  std::string block, coarse, fine;
  Clock::time_point t0;
};

// The callbacks are plain functions: their state is this thread's.
thread_local std::vector<Frame> stack;
thread_local int op_depth = 0;
thread_local std::map<std::string, Total> by_block, by_op, by_layer;

std::string dims(const c10::IValue& v) {
  if (!v.isTensor() || !v.toTensor().defined()) return "-";
  std::string s;
  for (auto d : v.toTensor().sizes()) s += (s.empty() ? "" : "x") + std::to_string(d);
  return s;
}

// The operator's name for the by-operator table (convolutions by kernel size) and, for the
// by-layer one, with the shapes that set its cost.
void label(const at::RecordFunction& fn, Frame& f) {
  const std::string name = fn.name();
  const auto in = fn.inputs();
  auto arg = [&](size_t i) { return i < in.size() ? dims(in[i]) : std::string("-"); };
  f.coarse = name;
  if (name == "aten::conv2d" && in.size() > 1 && in[1].isTensor() && in[1].toTensor().dim() == 4) {
    const auto w = in[1].toTensor().sizes();
    const auto x = in[0].toTensor().sizes();
    const std::string k = std::to_string(w[2]) + "x" + std::to_string(w[3]);
    f.coarse = "aten::conv2d " + k;
    f.fine = "conv2d " + k + " " + std::to_string(w[1]) + "->" + std::to_string(w[0]) + " at " + std::to_string(x[2]) +
             "x" + std::to_string(x[3]) + " (batch " + std::to_string(x[0]) + ")";
  } else if (name == "aten::linear" && in.size() > 1 && in[1].isTensor()) {
    const auto w = in[1].toTensor().sizes();
    f.fine = "linear " + std::to_string(w[1]) + "->" + std::to_string(w[0]) + " on " + arg(0);
  } else if (name == "aten::matmul" || name == "aten::bmm" || name == "aten::mm" || name == "aten::baddbmm") {
    f.fine = name.substr(6) + " " + arg(name == "aten::baddbmm" ? 1 : 0) + " @ " + arg(name == "aten::baddbmm" ? 2 : 1);
  } else {
    f.fine = name.substr(name.rfind(':') + 1) + " " + arg(0);
  }
}

std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction& fn) {
  Frame f;
  f.user = fn.scope() == at::RecordScope::USER_SCOPE;
  if (f.user) {
    f.block = fn.name();
  } else {
    f.outer = op_depth++ == 0;
    if (f.outer) {
      label(fn, f);
      for (auto it = stack.rbegin(); it != stack.rend(); ++it)
        if (it->user) {
          f.block = it->block;
          break;
        }
    }
  }
  f.t0 = Clock::now();
  stack.push_back(std::move(f));
  return nullptr;
}

void on_exit(const at::RecordFunction&, at::ObserverContext*) {
  if (stack.empty()) return;  // began before the profile did
  const Frame f = std::move(stack.back());
  stack.pop_back();
  const double s = std::chrono::duration<double>(Clock::now() - f.t0).count();
  auto add = [s](Total& t) {
    t.s += s;
    ++t.calls;
  };
  if (f.user) {
    add(by_block[f.block]);
    return;
  }
  --op_depth;
  if (!f.outer) return;
  if (f.block.empty()) add(by_block["(outside the blocks: embeddings, conv_in/out, norm_out)"]);
  add(by_op[f.coarse]);
  add(by_layer[f.fine]);
}

thread_local at::CallbackHandle handle = 0;

void table(const char* what, const std::map<std::string, Total>& m, double wall_s, size_t top) {
  std::vector<std::pair<std::string, Total>> rows(m.begin(), m.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.s > b.second.s; });
  std::printf("\n| %-64s | %9s | %6s | %6s |\n", what, "s", "calls", "%");
  std::printf("|%s|%s|%s|%s|\n", std::string(66, '-').c_str(), std::string(11, '-').c_str(), std::string(8, '-').c_str(),
              std::string(8, '-').c_str());
  for (size_t i = 0; i < rows.size() && i < top; ++i)
    std::printf("| %-64s | %9.3f | %6lld | %6.1f |\n", rows[i].first.c_str(), rows[i].second.s,
                static_cast<long long>(rows[i].second.calls), 100 * rows[i].second.s / wall_s);
}

}  // namespace

OpProfile::OpProfile() {
  stack.clear();
  op_depth = 0;
  by_block.clear();
  by_op.clear();
  by_layer.clear();
  handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback(on_enter, on_exit).needsInputs(true).scopes({at::RecordScope::FUNCTION, at::RecordScope::USER_SCOPE}));
}

OpProfile::~OpProfile() { at::removeCallback(handle); }

void OpProfile::print(const std::string& title, double wall_s, int top) const {
  double ops = 0;
  for (const auto& [_, t] : by_op) ops += t.s;
  std::printf("\n%s: %.3f s wall, %.3f s in operators (%.1f%%)\n", title.c_str(), wall_s, ops, 100 * ops / wall_s);
  table("block", by_block, wall_s, by_block.size());
  table("operator", by_op, wall_s, by_op.size());
  table("layer (operator and shapes)", by_layer, wall_s, static_cast<size_t>(top));
}

}  // namespace bioesp::bench
