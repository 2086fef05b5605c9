// The CLIP BPE tokenizer, as transformers' CLIPTokenizer (tokenizers backend) runs it for Stable
// Diffusion: NFC, whitespace folded, lower-cased; CLIP's pre-tokenisation pattern; byte-level BPE
// with "</w>" word ends; bos/eos; padding and truncation to model_max_length. Textual-inversion
// tokens are found in the text, as added tokens are.
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
// GPT-2's byte → printable-character table that byte-level BPE symbols are written in.
const std::array<std::string, 256>& byte_symbols();

// A textual-inversion token: its name, and the ids of its vectors (count from first on, past the
// vocabulary).
struct AddedToken {
  std::string name;
  int64_t first = 0, count = 1;
};

class ClipTokenizer {
 public:
  // Reads vocab.json, merges.txt and, when present, tokenizer_config.json and
  // special_tokens_map.json from a tokenizer folder.
  explicit ClipTokenizer(const std::string& dir);

  std::vector<int64_t> tokenize(const std::string& text) const;  // no bos/eos
  Encoding encode(const std::string& text) const;
  std::string decode(const std::vector<int64_t>& ids) const;

  // Replaces the added tokens. Tokenize then reads each name as its vectors' ids wherever the
  // text holds it, case and Unicode normalisation aside, as a word of its own where it begins or
  // ends with a letter or digit ("bichito," and "<bichito>." are found, "bichitos" is not); the
  // longest name first. Throws for a name with no words, or two names that read alike.
  void set_added_tokens(const std::vector<AddedToken>& tokens);
  // How many ids from `id` on are one unit: an added token's count at its first id, else 1.
  int64_t unit_length(int64_t id) const;
  // The id of a vocabulary entry (such as ",</w>"), or -1.
  int64_t find(const std::string& token) const;

  int64_t bos() const { return bos_; }
  int64_t eos() const { return eos_; }
  int64_t pad() const { return pad_; }
  int max_length() const { return max_length_; }
  int64_t vocab_size() const { return static_cast<int64_t>(tokens_.size()); }  // the largest id + 1

 private:
  std::vector<int64_t> bpe(const std::string& word) const;
  void merge(std::vector<std::string>& symbols) const;
  std::vector<int64_t> vocabulary_ids(const std::string& text) const;
  struct Added;
  const Added* added_at(const std::u32string& text, size_t i) const;
  int64_t id_of(const std::string& token, const std::string& what) const;

  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> tokens_;  // id → token
  std::unordered_map<std::string, int> ranks_;
  std::unordered_map<char32_t, uint8_t> unicode_to_byte_;
  int64_t bos_ = 0, eos_ = 0, pad_ = 0, unk_ = 0;
  int max_length_ = 77;
  struct Added {
    AddedToken token;
    std::u32string text;  // the name NFC and lower-cased, as tokenize looks for it
  };
  std::vector<Added> added_;  // longest name first
  std::unordered_map<int64_t, size_t> added_by_first_;  // first vector id → index in added_
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache_;
};

}  // namespace bioesp::text
