#include "pipeline/preview.h"

#include "core/error.h"

namespace bioesp::pipeline {

torch::Tensor latent_rgb(const torch::Tensor& latents) {
  static const float factors[4][3] = {
      // R       G       B
      {0.3512f, 0.2297f, 0.3227f},
      {0.3250f, 0.4974f, 0.2350f},
      {-0.2829f, 0.1762f, 0.2721f},
      {-0.2120f, -0.2616f, -0.7177f},
  };
  if (latents.dim() != 4 || latents.size(1) != 4)
    fail(BIOESP_ERR_UNSUPPORTED, "previews without a tiny autoencoder need 4-channel latents");
  auto map = torch::from_blob(const_cast<float*>(&factors[0][0]), {4, 3}, torch::kFloat32).to(latents.device());
  auto rgb = torch::matmul(latents.to(torch::kFloat32).permute({0, 2, 3, 1}), map);
  return ((rgb + 1) / 2).clamp(0, 1).cpu();
}

}  // namespace bioesp::pipeline
