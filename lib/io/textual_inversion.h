// Textual-inversion embeddings as the web UIs and diffusers save them: A1111's torch.save
// {"string_to_param": {"*": [N, D]}, "name", "step", ...} (.pt, read by the restricted unpickler),
// A1111's safetensors {"emb_params": [N, D]}, and diffusers' learned_embeds {token: [D] or [N, D]}
// (.safetensors or .bin).
#pragma once

#include <string>

#include "io/tensor.h"

namespace bioesp::io {

struct EmbeddingFile {
  Tensor vectors;      // [N, D], a floating-point dtype
  std::string token;   // the token the file names (diffusers' layout), else ""
};

// Throws BIOESP_ERR_FORMAT naming what the file holds when it is none of the layouts (several
// terms, a tensor that is not vectors), BIOESP_ERR_UNSUPPORTED for an SDXL embedding.
EmbeddingFile read_embedding(const std::string& path);

// The file name without its folder and last extension: A1111's name for an embedding.
std::string file_stem(const std::string& path);

}  // namespace bioesp::io
