#include "text/prompt_chunks.h"

#include <algorithm>

namespace bioesp::text {
namespace {

// tokenize_line's state: the window being filled (without bos and eos), the finished ones, and
// the position of the last comma in the current one.
class Chunker {
 public:
  explicit Chunker(const ClipTokenizer& t)
      : tok_(t), length_(static_cast<size_t>(t.max_length() - 2)), comma_(t.find(",</w>")) {}

  void add(const std::vector<int64_t>& ids, float weight) {
    for (size_t pos = 0; pos < ids.size();) {
      if (ids[pos] == comma_) {
        last_comma_ = static_cast<std::ptrdiff_t>(chunk_.ids.size());
      } else if (chunk_.ids.size() == length_ && last_comma_ >= 0 &&
                 length_ - static_cast<size_t>(last_comma_) <= kCommaBacktrack) {
        move_after_comma();
      }
      if (chunk_.ids.size() == length_) next_chunk();
      const size_t n = std::min(static_cast<size_t>(tok_.unit_length(ids[pos])), ids.size() - pos);
      if (chunk_.ids.size() + n > length_) next_chunk();
      chunk_.ids.insert(chunk_.ids.end(), ids.begin() + pos, ids.begin() + pos + n);
      chunk_.weights.insert(chunk_.weights.end(), n, weight);
      pos += n;
    }
  }

  void next_chunk() {
    chunk_.ids.resize(length_, tok_.eos());
    chunk_.weights.resize(length_, 1.0f);
    chunk_.ids.insert(chunk_.ids.begin(), tok_.bos());
    chunk_.ids.push_back(tok_.eos());
    chunk_.weights.insert(chunk_.weights.begin(), 1.0f);
    chunk_.weights.push_back(1.0f);
    if (tok_.pad() != tok_.eos()) {
      auto eos = std::find(chunk_.ids.begin(), chunk_.ids.end(), tok_.eos());
      std::fill(eos + 1, chunk_.ids.end(), tok_.pad());
    }
    chunks_.push_back(std::move(chunk_));
    chunk_ = {};
    last_comma_ = -1;
  }

  std::vector<PromptChunk> finish() {
    if (!chunk_.ids.empty() || chunks_.empty()) next_chunk();
    return std::move(chunks_);
  }

 private:
  // The full window ends at its last comma; the words after it open the next one.
  void move_after_comma() {
    const auto at = last_comma_ + 1;
    PromptChunk moved{{chunk_.ids.begin() + at, chunk_.ids.end()}, {chunk_.weights.begin() + at, chunk_.weights.end()}};
    chunk_.ids.resize(static_cast<size_t>(at));
    chunk_.weights.resize(static_cast<size_t>(at));
    next_chunk();
    chunk_ = std::move(moved);
  }

  const ClipTokenizer& tok_;
  const size_t length_;
  const int64_t comma_;  // -1 when the vocabulary has no ",</w>"
  PromptChunk chunk_;
  std::vector<PromptChunk> chunks_;
  std::ptrdiff_t last_comma_ = -1;
};

}  // namespace

std::vector<PromptChunk> chunk_prompt(const ClipTokenizer& tokenizer, const std::vector<WeightedText>& runs) {
  Chunker chunker(tokenizer);
  for (const auto& run : runs) {
    if (is_break(run)) {
      chunker.next_chunk();
    } else {
      chunker.add(tokenizer.tokenize(run.text), static_cast<float>(run.weight));
    }
  }
  return chunker.finish();
}

}  // namespace bioesp::text
