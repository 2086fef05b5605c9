// The prompt syntax of AUTOMATIC1111's web UI, read as its modules/prompt_parser.py
// parse_prompt_attention reads it: (x) ×1.1, [x] ÷1.1, (x:w), nesting, \( \) \[ \] \\ escapes,
// unbalanced brackets closed at the end, and BREAK.
#pragma once

#include <string>
#include <vector>

namespace bioesp::text {

struct WeightedText {
  std::string text;  // UTF-8
  double weight = 1.0;
};

// A1111 marks a BREAK as the text "BREAK" with weight -1 (so a bracket around a BREAK multiplies
// it into plain text again, as there).
bool is_break(const WeightedText& t);

// Brackets open at once (round and square together) beyond which a prompt is refused: A1111 has
// no limit, but weighting costs the text's length times the depth.
constexpr size_t kMaxBracketDepth = 256;

// The runs of text with their weights, adjacent runs of one weight merged; [("", 1)] for an
// empty prompt. Weights are the same doubles Python computes, multiplied in the same order.
// Throws BIOESP_ERR_INVALID_ARGUMENT, naming the place, for a weight Python's float() refuses
// (A1111 fails there too, e.g. "(x:1.2.3)"), for brackets nested deeper than kMaxBracketDepth, and
// for a weight that is not a finite float32 (where A1111 would draw from inf or NaN).
std::vector<WeightedText> parse_prompt_attention(const std::string& prompt);

}  // namespace bioesp::text
