// The CLIP BPE tokenizer, as transformers' CLIPTokenizer (tokenizers backend) runs it for Stable
// Diffusion: NFC, whitespace folded, lower-cased; CLIP's pre-tokenisation pattern; byte-level BPE
// with "</w>" word ends; bos/eos; padding and truncation to model_max_length.
#pragma once

#include <array>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace bioesp::text {

struct Encoding {
  std::vector<int64_t> ids;         // bos + tokens + eos, truncated and padded to max_length
  std::vector<int64_t> untruncated; // bos + all tokens + eos
  bool truncated = false;
  std::string removed;              // the text that truncation cut, decoded
};

// The words BPE sees: NFC, whitespace folded, lower-cased, split by CLIP's pattern (UTF-8).
std::vector<std::string> clip_words(const std::string& text);
// Replaces every occurrence of the adjacent pair (a, b), left to right, by a + b.
void merge_pair(std::vector<std::string>& symbols, const std::string& a, const std::string& b);
// GPT-2's byte → printable-character table that byte-level BPE symbols are written in.
const std::array<std::string, 256>& byte_symbols();

class ClipTokenizer {
 public:
  // Reads vocab.json, merges.txt and, when present, tokenizer_config.json and
  // special_tokens_map.json from a tokenizer folder.
  explicit ClipTokenizer(const std::string& dir);

  std::vector<int64_t> tokenize(const std::string& text) const;  // no bos/eos
  Encoding encode(const std::string& text) const;
  std::string decode(const std::vector<int64_t>& ids) const;

  int64_t bos() const { return bos_; }
  int64_t eos() const { return eos_; }
  int64_t pad() const { return pad_; }
  int max_length() const { return max_length_; }
  int64_t vocab_size() const { return static_cast<int64_t>(tokens_.size()); }  // the largest id + 1

 private:
  std::vector<int64_t> bpe(const std::string& word) const;
  int64_t id_of(const std::string& token, const std::string& what) const;

  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> tokens_;  // id → token
  std::unordered_map<std::string, int> ranks_;
  std::unordered_map<char32_t, uint8_t> unicode_to_byte_;
  int64_t bos_ = 0, eos_ = 0, pad_ = 0, unk_ = 0;
  int max_length_ = 77;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache_;
};

}  // namespace bioesp::text
