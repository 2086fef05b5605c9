// Long and weighted prompts cut into the text encoder's windows as A1111's
// FrozenCLIPEmbedderWithCustomWords.tokenize_line cuts them (modules/sd_hijack_clip.py).
#pragma once

#include <cstdint>
#include <vector>

#include "text/clip_tokenizer.h"
#include "text/prompt_parser.h"

namespace bioesp::text {

// One window: bos, max_length - 2 tokens (eos-padded), eos; then pad after the first eos where
// pad differs from eos (SD 2.x), as A1111 does. A weight per position (1 for bos, eos and pad).
struct PromptChunk {
  std::vector<int64_t> ids;
  std::vector<float> weights;
};

// A1111 moves the words after the last comma into the next window when that comma is at most
// this many tokens from the window's end (its comma_padding_backtrack setting, default 20).
constexpr size_t kCommaBacktrack = 20;

// The windows of a parsed prompt: each run tokenized on its own, its weight on each of its
// tokens; BREAK starts a new window; an added token's vectors never straddle two windows. At least
// one window (an empty prompt gives bos, then eos).
std::vector<PromptChunk> chunk_prompt(const ClipTokenizer& tokenizer, const std::vector<WeightedText>& runs);

}  // namespace bioesp::text
