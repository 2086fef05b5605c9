// bioesp_device → torch::Device, failing clearly where CUDA is missing.
#pragma once

#include <torch/cuda.h>
#include <torch/torch.h>

#include "core/error.h"

namespace bioesp {

inline torch::Device device_from(bioesp_device device, int index) {
  if (device == BIOESP_DEVICE_CPU) return torch::kCPU;
  if (device != BIOESP_DEVICE_CUDA) fail(BIOESP_ERR_INVALID_ARGUMENT, "unknown device");
  if (!torch::cuda::is_available())
    fail(BIOESP_ERR_UNSUPPORTED, "CUDA is not available (this LibTorch has no CUDA, or there is no GPU)");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

}  // namespace bioesp
