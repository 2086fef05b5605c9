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

namespace {

// The prompts' ids [B, max_length] as `tokenizer` pads and truncates them.
torch::Tensor token_ids(const text::ClipTokenizer& tokenizer, const std::vector<std::string>& prompts,
                        const std::function<void(const std::string&)>& truncated) {
  std::vector<int64_t> ids;
  for (const auto& p : prompts) {
    auto e = tokenizer.encode(p);
    if (e.truncated && truncated) truncated(e.removed);
    ids.insert(ids.end(), e.ids.begin(), e.ids.end());
  }
  return torch::tensor(ids, torch::kLong).view({static_cast<int64_t>(prompts.size()), -1});
}

}  // namespace

PromptEmbeds StableDiffusion::encode_prompts(const std::vector<std::string>& prompts, int clip_skip, PromptSyntax syntax,
                                             const std::function<void(const std::string&)>& truncated) {
  if (syntax == PromptSyntax::Weighted) return encode_weighted(prompts, clip_skip);
  if (!sdxl()) return encode_tokens(token_ids(*tokenizer_, prompts, truncated), {}, clip_skip);
  // The same vocabulary cuts the same text: told once.
  auto ids = tokenizer_ ? token_ids(*tokenizer_, prompts, truncated) : torch::Tensor();
  return encode_tokens(ids, token_ids(*tokenizer_2_, prompts, tokenizer_ ? std::function<void(const std::string&)>() : truncated), clip_skip);
}

PromptEmbeds StableDiffusion::encode_tokens(const torch::Tensor& ids, const torch::Tensor& ids_2, int clip_skip) {
  if (!sdxl()) return {text_encoder_->encode(ids.to(device_), clip_skip), {}};
  if (!ids_2.defined() || (text_encoder_ && !ids.defined()))
    fail(BIOESP_ERR_INVALID_ARGUMENT, "an SDXL model reads a prompt's ids from both tokenizers");
  return encode_sdxl(text_encoder_ ? ids.to(device_) : ids, ids_2.to(device_), clip_skip);
}

PromptEmbeds StableDiffusion::encode_weighted(const std::vector<std::string>& prompts, int clip_skip) {
  // SDXL's second tokenizer makes the same windows with its own padding.
  std::vector<std::vector<text::PromptChunk>> windows, windows_2;
  size_t count = 0;
  for (const auto& p : prompts) {
    const auto parsed = text::parse_prompt_attention(p);
    windows.push_back(text::chunk_prompt(window_tokenizer(), parsed));
    if (sdxl()) windows_2.push_back(text::chunk_prompt(*tokenizer_2_, parsed));
    count = std::max(count, windows.back().size());
  }
  const size_t tokens = static_cast<size_t>(window_tokenizer().max_length() - 2);
  if (count > kMaxPromptWindows)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "a prompt of " + std::to_string(count) + " windows of " + std::to_string(tokens) +
                                          " tokens; at most " + std::to_string(kMaxPromptWindows) + " (" +
                                          std::to_string(kMaxPromptWindows * tokens) + " tokens)");
  const auto empty = text::chunk_prompt(window_tokenizer(), {{"", 1.0}}).front();
  const auto empty_2 = sdxl() ? text::chunk_prompt(*tokenizer_2_, {{"", 1.0}}).front() : empty;
  const auto B = static_cast<int64_t>(prompts.size());
  auto batch = [&](const std::vector<int64_t>& ids) { return torch::tensor(ids, torch::kLong).view({B, -1}).to(device_); };
  std::vector<torch::Tensor> parts;
  torch::Tensor pooled;
  for (size_t w = 0; w < count; ++w) {  // window w of every prompt at once, as A1111 batches them
    std::vector<int64_t> ids, ids_2;
    std::vector<float> weights;
    for (size_t i = 0; i < windows.size(); ++i) {
      const auto& c = w < windows[i].size() ? windows[i][w] : empty;
      ids.insert(ids.end(), c.ids.begin(), c.ids.end());
      weights.insert(weights.end(), c.weights.begin(), c.weights.end());
      if (!sdxl()) continue;
      const auto& c2 = w < windows_2[i].size() ? windows_2[i][w] : empty_2;
      ids_2.insert(ids_2.end(), c2.ids.begin(), c2.ids.end());
    }
    auto wt = torch::tensor(weights).view({B, -1}).to(device_);
    if (!sdxl()) {
      parts.push_back(apply_prompt_weights(text_encoder_->encode(batch(ids), clip_skip), wt));
      continue;
    }
    auto e = encode_sdxl(batch(ids), batch(ids_2), clip_skip, wt);
    parts.push_back(e.embeds);
    if (w == 0) pooled = e.pooled;  // A1111's SDXL conditioner pools the first window
  }
  return {torch::cat(parts, 1), pooled};
}

torch::Tensor StableDiffusion::pad_prompt_embeds(const torch::Tensor& embeds, int64_t tokens, int clip_skip) {
  const int64_t window = window_tokenizer().max_length(), missing = tokens - embeds.size(1);
  if (missing <= 0) return embeds;
  if (missing % window) fail(BIOESP_ERR_INVALID_ARGUMENT, "prompt embeddings that are not whole windows of " + std::to_string(window));
  auto empty = encode_prompts({""}, clip_skip).embeds.to(embeds.scalar_type());  // = an empty window, weighted or not
  return torch::cat({embeds, empty.repeat({embeds.size(0), missing / window, 1})}, 1);
}

void StableDiffusion::pad_to_longest(std::vector<torch::Tensor>& embeds, int clip_skip) {
  int64_t tokens = 0;
  for (const auto& e : embeds) tokens = std::max(tokens, e.size(1));
  for (auto& e : embeds) e = pad_prompt_embeds(e, tokens, clip_skip);
}

PromptEmbeds StableDiffusion::text_conditioning(const GenerateOptions& g, bool cfg) {
  const size_t B = g.prompts.size();
  const int64_t N = static_cast<int64_t>(B) * g.images_per_prompt;
  auto per_image = [&](const torch::Tensor& t) { return t.defined() ? t.repeat_interleave(g.images_per_prompt, 0) : t; };
  PromptEmbeds positive;
  if (g.prompt_embeds) {
    positive = {g.prompt_embeds->embeds.to(device_), g.prompt_embeds->pooled};
    if (positive.pooled.defined()) positive.pooled = positive.pooled.to(device_);
  } else {
    positive = encode_prompts(g.prompts, g.clip_skip, g.syntax, g.truncated);
    positive = {per_image(positive.embeds), per_image(positive.pooled)};
  }
  if (positive.embeds.size(0) != N) fail(BIOESP_ERR_INVALID_ARGUMENT, "prompt embeddings for another batch size");
  if (sdxl() && !(positive.pooled.defined() && positive.pooled.size(0) == N))
    fail(BIOESP_ERR_INVALID_ARGUMENT, "SDXL's prompt embeddings need their pooled part for every image");
  if (!cfg) return positive;
  auto negative = negative_embeds(g, B, positive);
  std::vector<torch::Tensor> both = {per_image(negative.embeds), positive.embeds};
  pad_to_longest(both, g.clip_skip);
  return {torch::cat(both), sdxl() ? torch::cat({per_image(negative.pooled), positive.pooled}) : torch::Tensor()};
}

PromptEmbeds StableDiffusion::negative_embeds(const GenerateOptions& g, size_t B, const PromptEmbeds& positive) {
  const auto rows = static_cast<int64_t>(B);
  if (sdxl() && !g.negative_prompt && force_zeros_for_empty_prompt_)
    return {torch::zeros({rows, positive.embeds.size(1), positive.embeds.size(2)}, positive.embeds.options()),
            torch::zeros({rows, positive.pooled.size(1)}, positive.pooled.options())};
  // diffusers' SDXL encode_prompt reads the negative prompt's penultimate layer whatever clip_skip.
  return encode_prompts(std::vector<std::string>(B, g.negative_prompt.value_or("")), sdxl() ? 0 : g.clip_skip, g.syntax,
                        g.truncated);
}

std::string StableDiffusion::add_embedding(const std::string& path, const std::string& token) {
  if (!text_encoder_) fail(BIOESP_ERR_UNSUPPORTED, "textual inversion needs the first text encoder, which this SDXL refiner lacks");
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
