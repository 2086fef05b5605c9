// CLIPTextModel (and CLIPTextModelWithProjection) as transformers names it: text_model.embeddings,
// text_model.encoder.layers.N, text_model.final_layer_norm, text_projection.
#pragma once

#include <torch/torch.h>

#include "models/layers.h"

#include "config/model_config.h"

namespace bioesp::models {

class CLIPAttentionImpl : public torch::nn::Module {
 public:
  CLIPAttentionImpl(int64_t dim, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x);
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};

 private:
  int64_t heads_;
};
TORCH_MODULE(CLIPAttention);

class CLIPMLPImpl : public torch::nn::Module {
 public:
  CLIPMLPImpl(int64_t dim, int64_t hidden, bool quick_gelu);
  torch::Tensor forward(const torch::Tensor& x);
  Linear fc1{nullptr}, fc2{nullptr};

 private:
  bool quick_gelu_;
};
TORCH_MODULE(CLIPMLP);

class CLIPEncoderLayerImpl : public torch::nn::Module {
 public:
  explicit CLIPEncoderLayerImpl(const config::CLIPTextConfig& c);
  torch::Tensor forward(const torch::Tensor& x);
  CLIPAttention self_attn{nullptr};
  LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  CLIPMLP mlp{nullptr};
};
TORCH_MODULE(CLIPEncoderLayer);

class CLIPEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit CLIPEmbeddingsImpl(const config::CLIPTextConfig& c);
  torch::Tensor forward(const torch::Tensor& ids);
  Embedding token_embedding{nullptr}, position_embedding{nullptr};
  // Textual-inversion vectors [E, D] for the ids past the vocabulary (vocab_size + k is row k),
  // kept apart from the weights as adapters are: not a parameter, never saved or trained.
  torch::Tensor added;
};
TORCH_MODULE(CLIPEmbeddings);

class CLIPEncoderImpl : public torch::nn::Module {
 public:
  explicit CLIPEncoderImpl(const config::CLIPTextConfig& c);
  torch::nn::ModuleList layers;
};
TORCH_MODULE(CLIPEncoder);

class CLIPTextTransformerImpl : public torch::nn::Module {
 public:
  explicit CLIPTextTransformerImpl(const config::CLIPTextConfig& c);
  CLIPEmbeddings embeddings{nullptr};
  CLIPEncoder encoder{nullptr};
  LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(CLIPTextTransformer);

struct TextEncoderOutput {
  torch::Tensor last_hidden_state;           // [B, L, D], after the final layer norm
  torch::Tensor pooler_output;               // [B, D], at the first eos token
  torch::Tensor text_embeds;                 // [B, P], with a projection only
  std::vector<torch::Tensor> hidden_states;  // embeddings, then each layer's output (N + 1)
};

class CLIPTextModelImpl : public torch::nn::Module {
 public:
  explicit CLIPTextModelImpl(const config::CLIPTextConfig& c);
  // Runs the first `layers` layers (all when negative); hidden_states are kept when asked.
  TextEncoderOutput forward(const torch::Tensor& ids, bool keep_hidden_states = false);
  // The prompt embedding diffusers feeds the UNet: last_hidden_state, or with clip_skip = k the
  // hidden state k layers before the last, through the final layer norm.
  torch::Tensor encode(const torch::Tensor& ids, int clip_skip = 0);
  // SDXL's reading of forward(ids, true): the hidden state clip_skip layers before the
  // penultimate one, not through the final layer norm (diffusers' hidden_states[-(clip_skip + 2)]).
  torch::Tensor skipped_hidden_state(const TextEncoderOutput& out, int clip_skip) const;
  const config::CLIPTextConfig& config() const { return c_; }

  CLIPTextTransformer text_model{nullptr};
  Linear text_projection{nullptr};

 private:
  config::CLIPTextConfig c_;
};
TORCH_MODULE(CLIPTextModel);

}  // namespace bioesp::models
