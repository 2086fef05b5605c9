#include "models/token_merge.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace bioesp::models {

namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

uint64_t finalize(uint64_t z) {  // splitmix64's output function
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t next(uint64_t& state) { return finalize(state += kGolden); }

uint64_t mix(uint64_t a, uint64_t b) { return finalize(a ^ finalize(b + kGolden)); }

torch::Tensor indices(const std::vector<int64_t>& v, const torch::Device& device) {
  return torch::tensor(v, torch::TensorOptions().dtype(torch::kLong)).to(device);
}

}  // namespace

TokenMerge::TokenMerge(const torch::Tensor& metric, int64_t h, int64_t w, int64_t r, uint64_t seed) {
  const int64_t B = metric.size(0), N = metric.size(1);
  TORCH_CHECK(N == h * w, "token merging: ", N, " tokens are not ", h, " × ", w);
  // One destination per whole 2 × 2 cell; an odd last row or column holds only sources.
  std::vector<char> is_dst(static_cast<size_t>(N), 0);
  std::vector<int64_t> dst, src;
  for (int64_t y = 0; y + 1 < h; y += 2)
    for (int64_t x = 0; x + 1 < w; x += 2) {
      const auto k = static_cast<int64_t>(next(seed) % 4);
      dst.push_back((y + k / 2) * w + x + k % 2);
      is_dst[static_cast<size_t>(dst.back())] = 1;
    }
  for (int64_t t = 0; t < N; ++t)
    if (!is_dst[static_cast<size_t>(t)]) src.push_back(t);
  const auto device = metric.device();
  src_ = indices(src, device);
  dst_ = indices(dst, device);
  const auto Ns = static_cast<int64_t>(src.size()), Nd = static_cast<int64_t>(dst.size());
  r_ = std::min(r, Ns);
  const int64_t kept = Ns - r_;

  // Each source's most similar destination; the r best-matched sources merge (stable order, so
  // ties break alike everywhere).
  auto m = metric.to(torch::kFloat32);
  m = m / m.norm(2, -1, true);
  auto scores = torch::matmul(m.index_select(1, src_), m.index_select(1, dst_).transpose(1, 2));
  auto [best, target] = scores.max(-1);
  auto order = std::get<1>(best.sort(/*stable=*/true, -1, /*descending=*/true));
  auto merged = order.slice(1, 0, r_), unmerged = order.slice(1, r_);
  auto into = target.gather(1, merged);
  merged_ = merged.unsqueeze(-1);
  unmerged_ = unmerged.unsqueeze(-1);
  into_ = into.unsqueeze(-1);
  auto ones = torch::ones({B, r_, 1}, metric.options());
  count_ = torch::ones({B, Nd, 1}, metric.options()).scatter_add(1, into_, ones);

  // Merged rows: the kept sources, then the destinations.
  const auto longs = torch::TensorOptions().dtype(torch::kLong).device(device);
  auto back = torch::empty({B, N}, longs);
  auto sources = src_.expand({B, Ns});
  back.index_copy_(1, dst_, (torch::arange(Nd, longs) + kept).expand({B, Nd}).contiguous());
  back.scatter_(1, sources.gather(1, unmerged), torch::arange(kept, longs).expand({B, kept}).contiguous());
  back.scatter_(1, sources.gather(1, merged), into + kept);
  back_ = back.unsqueeze(-1);
}

torch::Tensor TokenMerge::merge(const torch::Tensor& x) const {
  const int64_t B = x.size(0), C = x.size(2);
  auto src = x.index_select(1, src_);
  auto kept = src.gather(1, unmerged_.expand({B, -1, C}));
  auto moved = src.gather(1, merged_.expand({B, -1, C}));
  // The mean of a destination and the sources it takes (tomesd's scatter_reduce "mean").
  auto dst = x.index_select(1, dst_).scatter_add(1, into_.expand({B, -1, C}), moved) / count_;
  return torch::cat({kept, dst}, 1);
}

torch::Tensor TokenMerge::unmerge(const torch::Tensor& x) const {
  return x.gather(1, back_.expand({x.size(0), -1, x.size(2)}));
}

int64_t token_merge_downsample(const config::UNetConfig& c) {
  for (size_t i = 0; i < c.down_block_types.size(); ++i)
    if (c.down_block_types[i] == "CrossAttnDownBlock2D") return int64_t{1} << i;
  return 1;
}

struct TokenMergeScope::State {
  TokenMergeSettings settings;
  int64_t block = 0;  // transformer blocks run so far in this UNet pass
};

namespace {
thread_local TokenMergeScope::State* current = nullptr;
}

TokenMergeScope::TokenMergeScope(const TokenMergeSettings& s)
    : previous_(current), state_(std::make_unique<State>(State{s})) {
  current = state_.get();
}

TokenMergeScope::~TokenMergeScope() { current = previous_; }

void token_merge_new_pass() {
  if (current) current->block = 0;
}

std::optional<TokenMerge> token_merge_plan(const torch::Tensor& x, int64_t h, int64_t w) {
  if (!current || current->settings.ratio <= 0) return std::nullopt;
  const auto& s = current->settings;
  const int64_t block = current->block++, N = x.size(1);
  // tomesd's level: how far below the top this block's tokens are.
  const auto down = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(s.tokens / N))));
  if (down > s.max_downsample) return std::nullopt;
  const auto r = static_cast<int64_t>(static_cast<double>(N) * s.ratio);
  if (r <= 0) return std::nullopt;
  return TokenMerge(x, h, w, r, mix(mix(s.seed, static_cast<uint64_t>(s.step)), static_cast<uint64_t>(block)));
}

}  // namespace bioesp::models
