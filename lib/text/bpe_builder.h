// A CLIP-format byte-level BPE vocabulary learned from a corpus (the captions of a dataset), for
// text encoders trained from scratch: small vocabularies that the CLIP tokenizer reads unchanged.
#pragma once

#include <string>
#include <vector>

namespace bioesp::text {

// Learns merges over the words of `texts` (as ClipTokenizer splits them) until the vocabulary
// holds `vocab_size` tokens or no pair of symbols occurs twice, and writes vocab.json,
// merges.txt, tokenizer_config.json and special_tokens_map.json into `dir`. The vocabulary is
// CLIP's layout: the 256 byte symbols, the same with "</w>", the merges in order, then
// <|startoftext|> and <|endoftext|>. Returns the vocabulary size.
int build_clip_bpe(const std::vector<std::string>& texts, int vocab_size, const std::string& dir);

}  // namespace bioesp::text
