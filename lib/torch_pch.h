// Precompiled for every LibTorch translation unit.
#pragma once
#include <torch/torch.h>
#include <caffe2/serialize/inline_container.h>
