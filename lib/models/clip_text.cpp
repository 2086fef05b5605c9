#include "models/clip_text.h"

#include "core/error.h"
#include "models/attention.h"

namespace bioesp::models {

CLIPAttentionImpl::CLIPAttentionImpl(int64_t dim, int64_t heads) : heads_(heads) {
  k_proj = register_module("k_proj", Linear(dim, dim));
  v_proj = register_module("v_proj", Linear(dim, dim));
  q_proj = register_module("q_proj", Linear(dim, dim));
  out_proj = register_module("out_proj", Linear(dim, dim));
}

torch::Tensor CLIPAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), L = x.size(1), D = x.size(2);
  auto split = [&](const torch::Tensor& t) { return t.view({B, L, heads_, D / heads_}).transpose(1, 2); };
  auto out = attend(split(q_proj(x)), split(k_proj(x)), split(v_proj(x)), /*causal=*/true);
  return out_proj(out.transpose(1, 2).reshape({B, L, D}));
}

CLIPMLPImpl::CLIPMLPImpl(int64_t dim, int64_t hidden, bool quick_gelu) : quick_gelu_(quick_gelu) {
  fc1 = register_module("fc1", Linear(dim, hidden));
  fc2 = register_module("fc2", Linear(hidden, dim));
}

torch::Tensor CLIPMLPImpl::forward(const torch::Tensor& x) {
  auto h = fc1(x);
  h = quick_gelu_ ? h * torch::sigmoid(1.702 * h) : torch::gelu(h);
  return fc2(h);
}

CLIPEncoderLayerImpl::CLIPEncoderLayerImpl(const config::CLIPTextConfig& c) {
  auto ln = [&] { return LayerNorm(c.hidden_size, c.layer_norm_eps); };
  self_attn = register_module("self_attn", CLIPAttention(c.hidden_size, c.num_attention_heads));
  layer_norm1 = register_module("layer_norm1", ln());
  mlp = register_module("mlp", CLIPMLP(c.hidden_size, c.intermediate_size, c.hidden_act == "quick_gelu"));
  layer_norm2 = register_module("layer_norm2", ln());
}

torch::Tensor CLIPEncoderLayerImpl::forward(const torch::Tensor& x) {
  auto h = x + self_attn(layer_norm1(x));
  return h + mlp(layer_norm2(h));
}

CLIPEmbeddingsImpl::CLIPEmbeddingsImpl(const config::CLIPTextConfig& c) {
  token_embedding = register_module("token_embedding", Embedding(c.vocab_size, c.hidden_size));
  position_embedding = register_module("position_embedding", Embedding(c.max_position_embeddings, c.hidden_size));
}

torch::Tensor CLIPEmbeddingsImpl::forward(const torch::Tensor& ids) {
  auto positions = torch::arange(ids.size(1), torch::TensorOptions().dtype(torch::kLong).device(ids.device()));
  torch::Tensor tokens;
  if (!added.defined()) {
    tokens = token_embedding(ids);
  } else {
    const int64_t vocab = token_embedding->weight.size(0);
    auto rows = added.index_select(0, (ids - vocab).clamp(0, added.size(0) - 1).flatten()).view({ids.size(0), ids.size(1), -1});
    tokens = torch::where((ids >= vocab).unsqueeze(-1), rows, token_embedding(ids.clamp_max(vocab - 1)));
  }
  return tokens + position_embedding(positions).unsqueeze(0);
}

CLIPEncoderImpl::CLIPEncoderImpl(const config::CLIPTextConfig& c) {
  for (int i = 0; i < c.num_hidden_layers; ++i) layers->push_back(CLIPEncoderLayer(c));
  register_module("layers", layers);
}

CLIPTextTransformerImpl::CLIPTextTransformerImpl(const config::CLIPTextConfig& c) {
  embeddings = register_module("embeddings", CLIPEmbeddings(c));
  encoder = register_module("encoder", CLIPEncoder(c));
  final_layer_norm = register_module(
      "final_layer_norm", LayerNorm(c.hidden_size, c.layer_norm_eps));
}

CLIPTextModelImpl::CLIPTextModelImpl(const config::CLIPTextConfig& c) : c_(c) {
  text_model = register_module("text_model", CLIPTextTransformer(c));
  if (c.with_projection)
    text_projection = register_module(
        "text_projection", Linear(c.hidden_size, c.projection_dim, false));
}

TextEncoderOutput CLIPTextModelImpl::forward(const torch::Tensor& ids, bool keep_hidden_states) {
  if (ids.dim() != 2) fail(BIOESP_ERR_INVALID_ARGUMENT, "text encoder input must be [batch, tokens]");
  if (ids.size(1) > c_.max_position_embeddings)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "more tokens than the text encoder's " + std::to_string(c_.max_position_embeddings) + " positions");
  TextEncoderOutput out;
  auto h = text_model->embeddings(ids);
  if (keep_hidden_states) out.hidden_states.push_back(h);
  for (const auto& layer : *text_model->encoder->layers) {
    h = layer->as<CLIPEncoderLayer>()->forward(h);
    if (keep_hidden_states) out.hidden_states.push_back(h);
  }
  out.last_hidden_state = text_model->final_layer_norm(h);
  // The pooled token: the first eos (the highest vocabulary id with legacy configs whose
  // eos_token_id is 2).
  auto index = c_.eos_token_id == 2 ? ids.masked_fill(ids >= c_.vocab_size, 0).argmax(-1)
                                    : (ids == c_.eos_token_id).to(torch::kInt).argmax(-1);
  auto batch = torch::arange(ids.size(0), torch::TensorOptions().dtype(torch::kLong).device(ids.device()));
  out.pooler_output = out.last_hidden_state.index({batch, index});
  if (text_projection) out.text_embeds = text_projection(out.pooler_output);
  return out;
}

torch::Tensor CLIPTextModelImpl::encode(const torch::Tensor& ids, int clip_skip) {
  if (clip_skip <= 0) return forward(ids).last_hidden_state;
  if (clip_skip >= c_.num_hidden_layers)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "clip_skip " + std::to_string(clip_skip) + " leaves no layer of " +
                                          std::to_string(c_.num_hidden_layers));
  auto out = forward(ids, true);
  return text_model->final_layer_norm(out.hidden_states[out.hidden_states.size() - 1 - clip_skip]);
}

torch::Tensor CLIPTextModelImpl::skipped_hidden_state(const TextEncoderOutput& out, int clip_skip) const {
  const int64_t index = static_cast<int64_t>(out.hidden_states.size()) - 2 - clip_skip;
  if (clip_skip < 0 || index < 0)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "clip_skip " + std::to_string(clip_skip) + " leaves no layer of " +
                                          std::to_string(c_.num_hidden_layers) + " before the penultimate one");
  return out.hidden_states[static_cast<size_t>(index)];
}

}  // namespace bioesp::models
