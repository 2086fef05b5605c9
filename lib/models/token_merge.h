// Token merging for Stable Diffusion (ToMe, Bolya & Hoffman 2023; the tomesd package): before a
// transformer block's self-attention, bipartite soft matching merges the most similar tokens,
// and the result is spread back to every token after it. Opt-in: the image drifts a little.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>

#include "config/model_config.h"

namespace bioesp::models {

// One merge plan for tokens [B, N, C] laid out h × w: each 2 × 2 cell keeps one destination
// token (chosen by `seed`), the other three are sources, and the r sources most similar (cosine
// of `metric`) to a destination are averaged into it.
class TokenMerge {
 public:
  TokenMerge(const torch::Tensor& metric, int64_t h, int64_t w, int64_t r, uint64_t seed);
  torch::Tensor merge(const torch::Tensor& x) const;    // [B, N, C] → [B, N − r, C]
  torch::Tensor unmerge(const torch::Tensor& x) const;  // [B, N − r, C] → [B, N, C]
  int64_t merged() const { return r_; }

 private:
  torch::Tensor src_, dst_;      // token indices of the sources and destinations [Ns], [Nd]
  torch::Tensor unmerged_;       // [B, Ns − r, 1]: sources kept, as positions in src_
  torch::Tensor merged_, into_;  // [B, r, 1]: sources merged, and the destination each joins
  torch::Tensor count_;          // [B, Nd, 1]: tokens averaged into each destination
  torch::Tensor back_;           // [B, N, 1]: each token's row in the merged tensor
  int64_t r_;
};

// What one denoising step merges.
struct TokenMergeSettings {
  double ratio = 0;            // share of a block's tokens merged, 0 … 0.75; 0: none
  uint64_t seed = 0;           // with the step and the block, picks the destinations
  int64_t step = 0;
  int64_t tokens = 0;          // the latent's height × width: the UNet's top level
  int64_t max_downsample = 1;  // blocks at most this far below the top level merge (tomesd's)
};

// tomesd's max_downsample 1 merges only in the top level's transformers; SDXL has none there,
// so the first level that has them: 1 for SD 1.x/2.x, 2 for SDXL.
int64_t token_merge_downsample(const config::UNetConfig& c);
// 0.75: with one destination per 2 × 2 cell, at most three tokens in four can merge.
constexpr double kMaxTokenMerging = 0.75;

// While alive on the thread, transformer blocks merge as `s` says (ratio 0: none, which a
// ControlNet opens so that its blocks run exactly).
class TokenMergeScope {
 public:
  explicit TokenMergeScope(const TokenMergeSettings& s);
  ~TokenMergeScope();
  TokenMergeScope(const TokenMergeScope&) = delete;
  TokenMergeScope& operator=(const TokenMergeScope&) = delete;
  struct State;

 private:
  State* previous_;
  std::unique_ptr<State> state_;
};

// The UNet calls this at each pass: its blocks are numbered from 0 again, so the destinations
// of a block are the same in every pass of a step (the CFG halves, as one batch or two).
void token_merge_new_pass();
// The plan for block input x [B, h·w, C] under the current scope; none when nothing merges.
std::optional<TokenMerge> token_merge_plan(const torch::Tensor& x, int64_t h, int64_t w);

}  // namespace bioesp::models
