// Any bytes as a prompt: A1111's parser either refuses with a bioesp error or gives runs whose
// neighbours differ in weight and whose weights are finite; with the tiny model's tokenizer
// ($BIOESP_REFERENCE_DIR), the windows are always max_length ids with a weight each, bos first.
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>

#include "core/error.h"
#include "text/prompt_chunks.h"
#include "text/prompt_parser.h"

namespace {

std::unique_ptr<bioesp::text::ClipTokenizer> load_tokenizer() {
  const char* ref = std::getenv("BIOESP_REFERENCE_DIR");
  if (!ref) return nullptr;
  auto t = std::make_unique<bioesp::text::ClipTokenizer>(std::string(ref) + "/models/tiny-sd1/tokenizer");
  t->set_added_tokens({{"<bichito>", 49408, 3}, {"bichito", 49411, 1}});
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto tokenizer = load_tokenizer();
  const std::string prompt(reinterpret_cast<const char*>(data), size);
  std::vector<bioesp::text::WeightedText> runs;
  try {
    runs = bioesp::text::parse_prompt_attention(prompt);
  } catch (const bioesp::Error&) {
    return 0;
  }
  if (runs.empty()) __builtin_trap();
  for (size_t i = 0; i < runs.size(); ++i) {
    if (!std::isfinite(runs[i].weight)) __builtin_trap();
    if (i && runs[i].weight == runs[i - 1].weight) __builtin_trap();
  }
  if (!tokenizer) return 0;
  for (const auto& w : bioesp::text::chunk_prompt(*tokenizer, runs)) {
    if (w.ids.size() != static_cast<size_t>(tokenizer->max_length()) || w.weights.size() != w.ids.size()) __builtin_trap();
    if (w.ids.front() != tokenizer->bos()) __builtin_trap();
  }
  return 0;
}
