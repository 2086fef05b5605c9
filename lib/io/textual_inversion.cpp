#include "io/textual_inversion.h"

#include "core/error.h"
#include "core/strings.h"
#include "io/file.h"
#include "io/weights.h"

namespace bioesp::io {
namespace {

std::string names_of(const WeightSet& set) {
  std::string out;
  for (size_t i = 0; i < set.tensors.size() && i < 8; ++i) out += (i ? ", " : "") + set.tensors[i].name;
  return out + (set.tensors.size() > 8 ? ", …" : "");
}

// The one tensor of a layout, as [N, D] vectors.
EmbeddingFile vectors_from(const Tensor& t, const std::string& token, const std::string& path) {
  if (!dtype_is_float(t.dtype))
    fail(BIOESP_ERR_FORMAT, path + ": the embedding '" + t.name + "' is " + dtype_name(t.dtype) + ", not floating point");
  EmbeddingFile e{t, token};
  if (t.shape.size() == 1) e.vectors.shape = {1, t.shape[0]};
  if (e.vectors.shape.size() != 2 || e.vectors.shape[0] < 1 || e.vectors.shape[1] < 1)
    fail(BIOESP_ERR_FORMAT, path + ": the embedding '" + t.name + "' is not a list of vectors ([vectors, width])");
  return e;
}

}  // namespace

std::string file_stem(const std::string& path) {
  const auto slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  const auto dot = name.rfind('.');
  return dot == std::string::npos || dot == 0 ? name : name.substr(0, dot);
}

EmbeddingFile read_embedding(const std::string& path) {
  if (!is_file(path)) fail(BIOESP_ERR_NOT_FOUND, path + ": no such embedding file");
  WeightSet set = open_weights(path, {});
  std::vector<const Tensor*> params;
  for (const auto& t : set.tensors)
    if (starts_with(t.name, "string_to_param.")) params.push_back(&t);
  if (params.size() > 1)
    fail(BIOESP_ERR_FORMAT, path + ": string_to_param holds " + std::to_string(params.size()) +
                                " terms; an embedding file holds one");
  if (params.size() == 1) return vectors_from(*params[0], "", path);
  if (const Tensor* t = set.find("", "emb_params")) return vectors_from(*t, "", path);
  if (set.find("", "clip_l") || set.find("", "clip_g"))
    fail(BIOESP_ERR_UNSUPPORTED, path + ": an SDXL embedding (clip_l, clip_g); bioesp draws with SD 1.x and 2.x");
  if (set.tensors.size() == 1) return vectors_from(set.tensors[0], set.tensors[0].name, path);
  fail(BIOESP_ERR_FORMAT, path + ": not a textual-inversion embedding (string_to_param, emb_params or one "
                                 "{token: tensor}); it holds " + std::to_string(set.tensors.size()) + " tensors" +
                              (set.tensors.empty() ? "" : ": " + names_of(set)));
}

}  // namespace bioesp::io
