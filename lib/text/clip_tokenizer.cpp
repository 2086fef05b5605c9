#include "text/clip_tokenizer.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>

#include "core/error.h"
#include "io/file.h"
#include "text/unicode.h"

namespace bioesp::text {
namespace {

using nlohmann::json;

const char* const kStart = "<|startoftext|>";
const char* const kEnd = "<|endoftext|>";

// A special token is given as a string or as {"content": ...}.
std::string token_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}

json read_json_or_empty(const std::string& path) {
  if (!io::exists(path)) return json::object();
  try {
    json j = json::parse(io::read_text_file(path));
    if (!j.is_object()) fail(BIOESP_ERR_FORMAT, path + ": not a JSON object");
    return j;
  } catch (const json::exception& e) {
    fail(BIOESP_ERR_FORMAT, path + ": malformed JSON: " + e.what());
  }
}

bool starts_with_at(const std::u32string& s, size_t i, const char* lit) {
  for (size_t k = 0; lit[k]; ++k)
    if (i + k >= s.size() || s[i + k] != static_cast<char32_t>(lit[k])) return false;
  return true;
}

// CLIP's pattern: 's|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+ (whitespace dropped).
std::vector<std::u32string> pre_tokenize(const std::u32string& s) {
  std::vector<std::u32string> out;
  size_t i = 0;
  while (i < s.size()) {
    char32_t c = s[i];
    if (is_space(c)) { ++i; continue; }
    size_t j = i + 1;
    if (c == U'\'') {
      for (const char* suffix : {"s", "t", "re", "ve", "m", "ll", "d"})
        if (starts_with_at(s, i + 1, suffix)) { j = i + 1 + std::char_traits<char>::length(suffix); break; }
      if (j == i + 1)
        while (j < s.size() && !is_space(s[j]) && !is_letter(s[j]) && !is_number(s[j])) ++j;
    } else if (is_letter(c)) {
      while (j < s.size() && is_letter(s[j])) ++j;
    } else if (!is_number(c)) {
      while (j < s.size() && !is_space(s[j]) && !is_letter(s[j]) && !is_number(s[j])) ++j;
    }
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

const std::array<std::string, 256>& byte_symbols() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      utf8_append(t[b], printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++));
    }
    return t;
  }();
  return table;
}

std::vector<std::string> clip_words(const std::string& text) {
  std::u32string u = nfc(utf8_decode(text));
  std::u32string folded;  // \s+ → " "
  for (char32_t c : u) {
    if (is_space(c)) {
      if (folded.empty() || folded.back() != U' ') folded += U' ';
    } else {
      folded += c;
    }
  }
  std::vector<std::string> out;
  for (const auto& w : pre_tokenize(to_lower(folded))) out.push_back(utf8_encode(w));
  return out;
}

ClipTokenizer::ClipTokenizer(const std::string& dir) {
  const std::string vocab_path = dir + "/vocab.json", merges_path = dir + "/merges.txt";
  if (!io::exists(vocab_path)) fail(BIOESP_ERR_IO, "tokenizer: missing " + vocab_path);
  if (!io::exists(merges_path)) fail(BIOESP_ERR_IO, "tokenizer: missing " + merges_path);
  json vocab = read_json_or_empty(vocab_path);
  for (const auto& [tok, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > (1 << 24))
      fail(BIOESP_ERR_FORMAT, vocab_path + ": the id of '" + tok + "' is not a small non-negative integer");
    int64_t i = id.get<int64_t>();
    vocab_[tok] = i;
    if (static_cast<size_t>(i) >= tokens_.size()) tokens_.resize(i + 1);
    tokens_[i] = tok;
  }
  if (vocab_.empty()) fail(BIOESP_ERR_FORMAT, vocab_path + ": empty vocabulary");

  std::istringstream merges(io::read_text_file(merges_path));
  std::string line;
  int lineno = 0, rank = 0;
  while (std::getline(merges, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (lineno == 1 && line.rfind("#version", 0) == 0)) continue;
    size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size() || line.find(' ', sp + 1) != std::string::npos)
      fail(BIOESP_ERR_FORMAT, merges_path + ":" + std::to_string(lineno) + ": a merge is two symbols separated by one space");
    if (!vocab_.count(line.substr(0, sp) + line.substr(sp + 1)))
      fail(BIOESP_ERR_FORMAT, merges_path + ":" + std::to_string(lineno) + ": merge result '" +
                                  line.substr(0, sp) + line.substr(sp + 1) + "' is not in vocab.json");
    ranks_.emplace(line, rank++);
  }
  if (ranks_.empty()) fail(BIOESP_ERR_FORMAT, merges_path + ": no merges");

  for (int b = 0; b < 256; ++b) unicode_to_byte_[utf8_decode(byte_symbols()[b])[0]] = static_cast<uint8_t>(b);

  json config = read_json_or_empty(dir + "/tokenizer_config.json");
  json special = read_json_or_empty(dir + "/special_tokens_map.json");
  auto special_token = [&](const char* key, const std::string& def) {
    std::string t = special.contains(key) ? token_text(special[key]) : "";
    if (t.empty() && config.contains(key)) t = token_text(config[key]);
    return t.empty() ? def : t;
  };
  bos_ = id_of(special_token("bos_token", kStart), "bos_token");
  eos_ = id_of(special_token("eos_token", kEnd), "eos_token");
  unk_ = id_of(special_token("unk_token", kEnd), "unk_token");
  pad_ = id_of(special_token("pad_token", kEnd), "pad_token");
  if (config.contains("model_max_length") && config["model_max_length"].is_number()) {
    double m = config["model_max_length"].get<double>();
    // Configs without a limit carry a huge sentinel; CLIP's position table has 77 entries.
    if (m >= 2 && m < 1e6) max_length_ = static_cast<int>(m);
  }
}

int64_t ClipTokenizer::id_of(const std::string& token, const std::string& what) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) fail(BIOESP_ERR_FORMAT, "tokenizer: " + what + " '" + token + "' is not in vocab.json");
  return it->second;
}

std::vector<int64_t> ClipTokenizer::bpe(const std::string& word) const {
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(word);
    if (it != cache_.end()) return it->second;
  }
  std::vector<std::string> sym;
  for (unsigned char b : word) sym.push_back(byte_symbols()[b]);
  if (sym.empty()) return {};
  sym.back() += "</w>";
  merge(sym);
  std::vector<int64_t> ids;
  for (const auto& s : sym) {
    auto it = vocab_.find(s);
    ids.push_back(it == vocab_.end() ? unk_ : it->second);
  }
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() > 100000) cache_.clear();
  cache_.emplace(word, ids);
  return ids;
}

void ClipTokenizer::merge(std::vector<std::string>& sym) const {
  // The lowest-ranked pair first, the leftmost among equals, from a heap as tokenizers' merge_all
  // does it: a word can be a megabyte of letters, where rescanning every pair per merge never ends.
  const size_t n = sym.size();
  std::vector<size_t> prev(n), next(n);  // n: none
  std::vector<bool> gone(n, false);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = i == 0 ? n : i - 1;
    next[i] = i + 1;
  }
  // A pair as it was when queued: symbols only grow, so their sizes tell whether it still is.
  struct Candidate {
    int rank;
    size_t left, left_size, right_size;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto consider = [&](size_t i) {
    if (i >= n || next[i] >= n) return;
    auto it = ranks_.find(sym[i] + " " + sym[next[i]]);
    if (it != ranks_.end()) heap.push({it->second, i, sym[i].size(), sym[next[i]].size()});
  };
  for (size_t i = 0; i < n; ++i) consider(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const size_t i = c.left, j = next[i];
    if (gone[i] || j >= n || sym[i].size() != c.left_size || sym[j].size() != c.right_size) continue;
    sym[i] += sym[j];
    gone[j] = true;
    next[i] = next[j];
    if (next[j] < n) prev[next[j]] = i;
    consider(prev[i]);
    consider(i);
  }
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) {
    if (gone[i]) continue;
    if (kept != i) sym[kept] = std::move(sym[i]);
    ++kept;
  }
  sym.resize(kept);
}

std::vector<int64_t> ClipTokenizer::vocabulary_ids(const std::string& text) const {
  std::vector<int64_t> ids;
  // Special tokens are matched in the raw text first, as added tokens are.
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t s = text.find(kStart, pos), e = text.find(kEnd, pos);
    size_t next = std::min(s, e);
    for (const auto& w : clip_words(text.substr(pos, next == std::string::npos ? std::string::npos : next - pos))) {
      auto part = bpe(w);
      ids.insert(ids.end(), part.begin(), part.end());
    }
    if (next == std::string::npos) break;
    ids.push_back(next == s ? bos_ : eos_);
    pos = next + std::char_traits<char>::length(next == s ? kStart : kEnd);
  }
  return ids;
}

const ClipTokenizer::Added* ClipTokenizer::added_at(const std::u32string& text, size_t i) const {
  auto word = [](char32_t c) { return is_letter(c) || is_number(c); };
  for (const auto& a : added_) {
    const size_t end = i + a.text.size();
    if (text.compare(i, a.text.size(), a.text) != 0) continue;
    if (word(a.text.front()) && i > 0 && word(text[i - 1])) continue;
    if (word(a.text.back()) && end < text.size() && word(text[end])) continue;
    return &a;
  }
  return nullptr;
}

std::vector<int64_t> ClipTokenizer::tokenize(const std::string& text) const {
  if (added_.empty()) return vocabulary_ids(text);
  const std::u32string low = to_lower(nfc(utf8_decode(text)));
  std::vector<int64_t> ids;
  size_t part = 0;  // where the text not yet tokenized begins
  auto words = [&](size_t end) {
    auto v = vocabulary_ids(utf8_encode(low.substr(part, end - part)));
    ids.insert(ids.end(), v.begin(), v.end());
  };
  for (size_t i = 0; i < low.size(); ++i) {
    const Added* a = added_at(low, i);
    if (!a) continue;
    words(i);
    for (int64_t k = 0; k < a->token.count; ++k) ids.push_back(a->token.first + k);
    part = i + a->text.size();
    i = part - 1;
  }
  if (part == 0) return vocabulary_ids(text);  // no name in it: exactly the plain tokenization
  words(low.size());
  return ids;
}

void ClipTokenizer::set_added_tokens(const std::vector<AddedToken>& tokens) {
  std::vector<Added> added;
  for (const auto& t : tokens) {
    Added a{t, to_lower(nfc(utf8_decode(t.name)))};
    if (clip_words(t.name).empty()) fail(BIOESP_ERR_INVALID_ARGUMENT, "token '" + t.name + "' has no words to find in a prompt");
    for (const auto& b : added)
      if (b.text == a.text)
        fail(BIOESP_ERR_INVALID_ARGUMENT, "tokens '" + t.name + "' and '" + b.token.name + "' read as the same words");
    added.push_back(std::move(a));
  }
  std::stable_sort(added.begin(), added.end(), [](const Added& a, const Added& b) { return a.text.size() > b.text.size(); });
  added_by_first_.clear();
  for (size_t k = 0; k < added.size(); ++k) added_by_first_[added[k].token.first] = k;
  added_ = std::move(added);
}

int64_t ClipTokenizer::unit_length(int64_t id) const {
  auto it = added_by_first_.find(id);
  return it == added_by_first_.end() ? 1 : added_[it->second].token.count;
}

int64_t ClipTokenizer::find(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

Encoding ClipTokenizer::encode(const std::string& text) const {
  Encoding e;
  std::vector<int64_t> tokens = tokenize(text);
  e.untruncated.push_back(bos_);
  e.untruncated.insert(e.untruncated.end(), tokens.begin(), tokens.end());
  e.untruncated.push_back(eos_);
  size_t keep = static_cast<size_t>(max_length_ - 2);
  e.truncated = tokens.size() > keep;
  if (e.truncated) e.removed = decode(std::vector<int64_t>(tokens.begin() + keep, tokens.end()));
  e.ids.push_back(bos_);
  e.ids.insert(e.ids.end(), tokens.begin(), tokens.begin() + std::min(keep, tokens.size()));
  e.ids.push_back(eos_);
  e.ids.resize(max_length_, pad_);
  return e;
}

std::string ClipTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string bytes, joined;  // joined: BPE symbols not yet turned into bytes
  auto flush = [&] {
    std::u32string u = utf8_decode(joined);
    for (size_t i = 0; i < u.size(); ++i) {
      if (starts_with_at(u, i, "</w>")) {
        bytes += ' ';
        i += 3;
        continue;
      }
      auto it = unicode_to_byte_.find(u[i]);
      if (it != unicode_to_byte_.end()) bytes += static_cast<char>(it->second);
    }
    joined.clear();
  };
  for (int64_t id : ids) {
    if (id == bos_ || id == eos_ || id == pad_) continue;
    auto added = added_by_first_.find(id);
    if (added != added_by_first_.end()) {  // an added token reads as its name (its other ids as nothing)
      flush();
      bytes += added_[added->second].token.name + " ";
    } else if (id >= 0 && static_cast<size_t>(id) < tokens_.size()) {
      joined += tokens_[id];
    }
  }
  flush();
  while (!bytes.empty() && bytes.back() == ' ') bytes.pop_back();
  return bytes;
}

}  // namespace bioesp::text
