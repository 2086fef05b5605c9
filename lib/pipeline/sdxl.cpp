// What SDXL adds to the pipeline (StableDiffusionXLPipeline, StableDiffusionXLImg2ImgPipeline):
// the second text encoder's share of the prompt embedding and its pooled projection, and the
// micro-conditioning's time ids.
#include "core/error.h"
#include "pipeline/pipeline.h"

namespace bioesp::pipeline {

namespace {

// [original_h, original_w, crop_top, crop_left] then [target_h, target_w] or, for refiners, the
// aesthetic score: _get_add_time_ids' order. Sizes 0 are the image's.
std::vector<float> size_ids(const SizeConditioning& m, int width, int height, bool aesthetic, double score) {
  auto or_image = [](int v, int image) { return static_cast<float>(v ? v : image); };
  std::vector<float> ids{or_image(m.original_height, height), or_image(m.original_width, width),
                         static_cast<float>(m.crop_top), static_cast<float>(m.crop_left)};
  if (aesthetic) {
    ids.push_back(static_cast<float>(score));
  } else {
    ids.push_back(or_image(m.target_height, height));
    ids.push_back(or_image(m.target_width, width));
  }
  return ids;
}

}  // namespace

text::ClipTokenizer& StableDiffusion::tokenizer_2() {
  if (!tokenizer_2_) fail(BIOESP_ERR_UNSUPPORTED, "this model has one tokenizer (SD 1.x/2.x); tokenizer_2 is SDXL's");
  return *tokenizer_2_;
}

models::CLIPTextModel& StableDiffusion::text_encoder_2() {
  if (!text_encoder_2_) fail(BIOESP_ERR_UNSUPPORTED, "this model has one text encoder (SD 1.x/2.x); text_encoder_2 is SDXL's");
  return text_encoder_2_;
}

PromptEmbeds StableDiffusion::encode_sdxl(const torch::Tensor& ids, const torch::Tensor& ids_2, int clip_skip,
                                          const torch::Tensor& weights) {
  auto second = text_encoder_2_->forward(ids_2, true);
  auto h_2 = text_encoder_2_->skipped_hidden_state(second, clip_skip);
  // A1111 weights each encoder's states and restores each one's mean on its own.
  if (weights.defined()) h_2 = apply_prompt_weights(h_2, weights);
  if (!text_encoder_) return {h_2, second.text_embeds};  // a refiner: the second encoder alone
  auto h = text_encoder_->skipped_hidden_state(text_encoder_->forward(ids, true), clip_skip);
  if (weights.defined()) h = apply_prompt_weights(h, weights);
  return {torch::cat({h, h_2}, -1), second.text_embeds};
}

torch::Tensor StableDiffusion::time_ids(const GenerateOptions& g, int width, int height, bool cfg) const {
  const bool aesthetic = requires_aesthetics_score_;
  auto row = [](const std::vector<float>& ids) { return torch::tensor(ids).unsqueeze(0); };
  auto positive = row(size_ids(g.micro, width, height, aesthetic, g.aesthetic_score));
  if (!cfg) return positive;
  // As diffusers defaults them: without negative sizes the negative half takes the positive ids
  // (its crop included); unset negative sizes are the positive ones.
  SizeConditioning n = g.negative_micro;
  if (!n.any() && !aesthetic) n = g.micro;
  if (!n.original_width) n.original_width = g.micro.original_width;
  if (!n.original_height) n.original_height = g.micro.original_height;
  if (!n.target_width) n.target_width = g.micro.target_width;
  if (!n.target_height) n.target_height = g.micro.target_height;
  return torch::cat({row(size_ids(n, width, height, aesthetic, g.negative_aesthetic_score)), positive});
}

}  // namespace bioesp::pipeline
