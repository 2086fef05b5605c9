// The prompt side of the pipeline: plain and weighted encodings, their padding, and
// textual-inversion embeddings.
#include <algorithm>

#include "core/error.h"
#include "io/textual_inversion.h"
#include "models/loader.h"
#include "pipeline/pipeline.h"
#include "text/prompt_chunks.h"

namespace bioesp::pipeline {

torch::Tensor apply_prompt_weights(const torch::Tensor& hidden, const torch::Tensor& weights) {
  // A1111 takes the mean over one prompt's window; a batch holds several prompts.
  auto z = hidden.to(torch::kFloat32);
  auto original = z.mean({1, 2}, true);
  auto weighted = z * weights.to(z.options()).unsqueeze(-1);
  auto out = weighted * (original / weighted.mean({1, 2}, true));
  if (!torch::isfinite(out).all().item<bool>())
    fail(BIOESP_ERR_INVALID_ARGUMENT, "the prompt's weights cancel its encoding's mean (the rescaled encoding is not finite)");
  return out.to(hidden.scalar_type());
}

torch::Tensor StableDiffusion::encode_prompts(const std::vector<std::string>& prompts, int clip_skip, PromptSyntax syntax,
                                              const std::function<void(const std::string&)>& truncated) {
  if (syntax == PromptSyntax::Weighted) return encode_weighted(prompts, clip_skip);
  std::vector<int64_t> ids;
  for (const auto& p : prompts) {
    auto e = tokenizer_->encode(p);
    if (e.truncated && truncated) truncated(e.removed);
    ids.insert(ids.end(), e.ids.begin(), e.ids.end());
  }
  auto t = torch::tensor(ids, torch::kLong).view({static_cast<int64_t>(prompts.size()), -1}).to(device_);
  return text_encoder_->encode(t, clip_skip);
}

torch::Tensor StableDiffusion::encode_weighted(const std::vector<std::string>& prompts, int clip_skip) {
  std::vector<std::vector<text::PromptChunk>> windows;
  size_t count = 0;
  for (const auto& p : prompts) {
    windows.push_back(text::chunk_prompt(*tokenizer_, text::parse_prompt_attention(p)));
    count = std::max(count, windows.back().size());
  }
  const size_t tokens = static_cast<size_t>(tokenizer_->max_length() - 2);
  if (count > kMaxPromptWindows)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "a prompt of " + std::to_string(count) + " windows of " + std::to_string(tokens) +
                                          " tokens; at most " + std::to_string(kMaxPromptWindows) + " (" +
                                          std::to_string(kMaxPromptWindows * tokens) + " tokens)");
  const auto empty = text::chunk_prompt(*tokenizer_, {{"", 1.0}}).front();
  const auto B = static_cast<int64_t>(prompts.size());
  std::vector<torch::Tensor> parts;
  for (size_t w = 0; w < count; ++w) {  // window w of every prompt at once, as A1111 batches them
    std::vector<int64_t> ids;
    std::vector<float> weights;
    for (const auto& p : windows) {
      const auto& c = w < p.size() ? p[w] : empty;
      ids.insert(ids.end(), c.ids.begin(), c.ids.end());
      weights.insert(weights.end(), c.weights.begin(), c.weights.end());
    }
    auto hidden = text_encoder_->encode(torch::tensor(ids, torch::kLong).view({B, -1}).to(device_), clip_skip);
    parts.push_back(apply_prompt_weights(hidden, torch::tensor(weights).view({B, -1}).to(device_)));
  }
  return torch::cat(parts, 1);
}

torch::Tensor StableDiffusion::pad_prompt_embeds(const torch::Tensor& embeds, int64_t tokens, int clip_skip) {
  const int64_t window = tokenizer_->max_length(), missing = tokens - embeds.size(1);
  if (missing <= 0) return embeds;
  if (missing % window) fail(BIOESP_ERR_INVALID_ARGUMENT, "prompt embeddings that are not whole windows of " + std::to_string(window));
  auto empty = encode_prompts({""}, clip_skip).to(embeds.scalar_type());  // = an empty window, weighted or not
  return torch::cat({embeds, empty.repeat({embeds.size(0), missing / window, 1})}, 1);
}

void StableDiffusion::pad_to_longest(std::vector<torch::Tensor>& embeds, int clip_skip) {
  int64_t tokens = 0;
  for (const auto& e : embeds) tokens = std::max(tokens, e.size(1));
  for (auto& e : embeds) e = pad_prompt_embeds(e, tokens, clip_skip);
}

torch::Tensor StableDiffusion::text_conditioning(const GenerateOptions& g, bool cfg) {
  const int64_t B = static_cast<int64_t>(g.prompts.size()), N = B * g.images_per_prompt;
  auto embeds = g.prompt_embeds.defined()
                    ? g.prompt_embeds.to(device_)
                    : encode_prompts(g.prompts, g.clip_skip, g.syntax, g.truncated).repeat_interleave(g.images_per_prompt, 0);
  if (embeds.size(0) != N) fail(BIOESP_ERR_INVALID_ARGUMENT, "prompt embeddings for another batch size");
  if (!cfg) return embeds;
  std::vector<torch::Tensor> both = {
      encode_prompts(std::vector<std::string>(B, g.negative_prompt), g.clip_skip, g.syntax, g.truncated)
          .repeat_interleave(g.images_per_prompt, 0),
      embeds};
  pad_to_longest(both, g.clip_skip);
  return torch::cat(both);
}

std::string StableDiffusion::add_embedding(const std::string& path, const std::string& token) {
  auto file = io::read_embedding(path);
  const std::string name = !token.empty() ? token : !file.token.empty() ? file.token : io::file_stem(path);
  if (name.find('\n') != std::string::npos) fail(BIOESP_ERR_INVALID_ARGUMENT, path + ": a token is one line of text");
  const int64_t count = file.vectors.shape[0], width = file.vectors.shape[1];
  const int64_t hidden = text_encoder_->config().hidden_size, window = tokenizer_->max_length() - 2;
  if (width != hidden)
    fail(BIOESP_ERR_MISMATCH, path + ": an embedding of width " + std::to_string(width) + ", but this model's text encoder takes " +
                                  std::to_string(hidden) + " (SD 1.x: 768, SD 2.x: 1024)");
  if (count > window)
    fail(BIOESP_ERR_FORMAT, path + ": " + std::to_string(count) + " vectors, more than the " + std::to_string(window) +
                                " tokens of a prompt window");
  auto vectors = models::to_torch(file.vectors).to(torch::kFloat32).clone();  // the file goes
  if (!torch::isfinite(vectors).all().item<bool>()) fail(BIOESP_ERR_FORMAT, path + ": the embedding holds NaN or infinite values");
  std::vector<Embedding> next;
  for (const auto& e : embeddings_)
    if (e.token != name) next.push_back(e);
  next.push_back({name, vectors.to(device_, dtype_)});
  install_embeddings(next);
  embeddings_ = std::move(next);
  return name;
}

bool StableDiffusion::remove_embedding(const std::string& token) {
  std::vector<Embedding> next;
  for (const auto& e : embeddings_)
    if (e.token != token) next.push_back(e);
  if (next.size() == embeddings_.size()) return false;
  install_embeddings(next);
  embeddings_ = std::move(next);
  return true;
}

void StableDiffusion::install_embeddings(const std::vector<Embedding>& embeddings) {
  const int64_t vocab = text_encoder_->config().vocab_size;  // past the tokenizer's (check_tokenizer)
  std::vector<text::AddedToken> tokens;
  std::vector<torch::Tensor> vectors;
  int64_t next = vocab;
  for (const auto& e : embeddings) {
    tokens.push_back({e.token, next, e.vectors.size(0)});
    vectors.push_back(e.vectors);
    next += e.vectors.size(0);
  }
  tokenizer_->set_added_tokens(tokens);  // throws before changing anything for names it cannot find
  text_encoder_->text_model->embeddings->added = vectors.empty() ? torch::Tensor() : torch::cat(vectors);
}

}  // namespace bioesp::pipeline
