// Autoencoders given apart from the model: --vae (in place of the model's VAE) and the tiny one
// that decodes previews. A diffusers AutoencoderKL or AutoencoderTiny folder (config.json and its
// weights, as madebyollin/taesd publishes it), a pipeline folder (its vae/), or TAESD's original
// files: a folder with <name>_decoder (and <name>_encoder) .safetensors or .pth, or the decoder
// file itself (its encoder taken from beside it when there is one).
#pragma once

#include <torch/torch.h>

#include <string>

#include "models/autoencoder_tiny.h"
#include "models/vae.h"

namespace bioesp::pipeline {

struct Autoencoder {
  models::AutoencoderKL kl{nullptr};      // exactly one of the two is set
  models::AutoencoderTiny tiny{nullptr};
};

Autoencoder load_autoencoder(const std::string& path, torch::Device device, torch::ScalarType dtype);

}  // namespace bioesp::pipeline
