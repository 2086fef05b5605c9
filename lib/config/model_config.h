// Component configs (config.json) as diffusers and transformers read them: absent keys take
// the libraries' defaults, per-block values are expanded to one entry per block, and values
// bioesp cannot build are refused naming the key.
#pragma once

#include <string>
#include <vector>

namespace bioesp::config {

// What a config may ask for, checked before anything is built: layers in any one stack, blocks,
// and any width (channels, hidden sizes, vocabularies, positions). The parameters a component
// holds are bounded too (models::build_checked).
constexpr int kMaxLayers = 256;
constexpr int kMaxBlocks = 16;
constexpr int kMaxWidth = 1 << 20;

struct CLIPTextConfig {
  int vocab_size = 49408;
  int hidden_size = 512;
  int intermediate_size = 2048;
  int projection_dim = 512;
  int num_hidden_layers = 12;
  int num_attention_heads = 8;
  int max_position_embeddings = 77;
  std::string hidden_act = "quick_gelu";  // or "gelu"
  double layer_norm_eps = 1e-5;
  int pad_token_id = 1, bos_token_id = 49406, eos_token_id = 49407;
  bool with_projection = false;  // CLIPTextModelWithProjection (SDXL's second encoder)
};

struct UNetConfig {
  int sample_size = 64;
  int in_channels = 4, out_channels = 4;
  bool center_input_sample = false;
  bool flip_sin_to_cos = true;
  double freq_shift = 0;
  std::vector<std::string> down_block_types, up_block_types;
  std::string mid_block_type = "UNetMidBlock2DCrossAttn";  // or "" (null)
  std::vector<int> block_out_channels;
  // Per down block (up blocks use them reversed, as diffusers does).
  std::vector<int> layers_per_block;
  std::vector<int> transformer_layers_per_block;
  std::vector<int> num_attention_heads;
  std::vector<int> cross_attention_dim;
  std::vector<bool> only_cross_attention;
  // Per up block, when the config gives reverse_transformer_layers_per_block.
  std::vector<int> reverse_transformer_layers_per_block;
  int downsample_padding = 1;
  double mid_block_scale_factor = 1;
  int norm_num_groups = 32;
  double norm_eps = 1e-5;
  bool use_linear_projection = false;
  bool upcast_attention = false;
  std::string addition_embed_type;  // "" or "text_time"
  int addition_time_embed_dim = 0;
  int projection_class_embeddings_input_dim = 0;
  int time_cond_proj_dim = 0;  // > 0: LCM's guidance embedding, added to the timestep features
  int time_embedding_dim() const { return block_out_channels.front() * 4; }
};

// ControlNetModel: a copy of the UNet's down path and mid block (the fields of `unet` they use;
// its up fields stay empty) with a conditioning embedding for the control image.
struct ControlNetConfig {
  UNetConfig unet;
  int conditioning_channels = 3;
  std::vector<int> conditioning_embedding_out_channels{16, 32, 96, 256};
  bool bgr = false;                    // controlnet_conditioning_channel_order "bgr": flipped to RGB
  bool global_pool_conditions = false; // residuals averaged over space (the shuffle ControlNet)
};

struct VAEConfig {
  int in_channels = 3, out_channels = 3, latent_channels = 4;
  std::vector<std::string> down_block_types{"DownEncoderBlock2D"}, up_block_types{"UpDecoderBlock2D"};
  std::vector<int> block_out_channels{64};
  int layers_per_block = 1;
  int norm_num_groups = 32;
  int sample_size = 32;
  double scaling_factor = 0.18215;
  bool force_upcast = true;
  bool use_quant_conv = true, use_post_quant_conv = true;
  bool mid_block_add_attention = true;
};

// AutoencoderTiny (TAESD): diffusers' defaults are TAESD for SD 1.x. Its latents are the UNet's
// latent space (scaling_factor 1.0); the legacy block_out_channels key is ignored, as diffusers
// ignores it.
struct TinyVAEConfig {
  int in_channels = 3, out_channels = 3, latent_channels = 4;
  std::vector<int> encoder_block_out_channels{64, 64, 64, 64}, decoder_block_out_channels{64, 64, 64, 64};
  std::vector<int> num_encoder_blocks{1, 3, 3, 3}, num_decoder_blocks{3, 3, 3, 1};
  int upsampling_scaling_factor = 2;
  double scaling_factor = 1.0;
  // Image pixels per latent.
  int latent_factor() const;
};

// Python's json writes -Infinity, Infinity and NaN (diffusers saves lambda_min_clipped = -inf):
// they become null, which every reader takes as the key's default.
std::string from_python_json(const std::string& text);

// `what` names the source in errors ("unet/config.json").
CLIPTextConfig parse_clip_text(const std::string& json_text, const std::string& what);
UNetConfig parse_unet(const std::string& json_text, const std::string& what);
VAEConfig parse_vae(const std::string& json_text, const std::string& what);
ControlNetConfig parse_controlnet(const std::string& json_text, const std::string& what);
TinyVAEConfig parse_tiny_vae(const std::string& json_text, const std::string& what);

}  // namespace bioesp::config
