#include "text/bpe_builder.h"

#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/file.h"
#include "text/clip_tokenizer.h"

namespace bioesp::text {
namespace {

// Replaces every occurrence of the adjacent pair (a, b), left to right, by a + b.
void merge_pair(std::vector<std::string>& symbols, const std::string& a, const std::string& b) {
  std::vector<std::string> next;
  for (size_t i = 0; i < symbols.size(); ++i) {
    if (i + 1 < symbols.size() && symbols[i] == a && symbols[i + 1] == b) {
      next.push_back(a + b);
      ++i;
    } else {
      next.push_back(symbols[i]);
    }
  }
  symbols.swap(next);
}

}  // namespace

int build_clip_bpe(const std::vector<std::string>& texts, int vocab_size, const std::string& dir) {
  const int base = 2 * 256 + 2;  // byte symbols, their word-final forms, two special tokens
  if (vocab_size < base) fail(BIOESP_ERR_INVALID_ARGUMENT, "a CLIP vocabulary needs at least " + std::to_string(base) + " tokens");
  // Each distinct word as its symbols, with how often it occurs.
  std::map<std::string, int64_t> counts;
  for (const auto& t : texts)
    for (const auto& w : clip_words(t)) ++counts[w];
  if (counts.empty()) fail(BIOESP_ERR_INVALID_ARGUMENT, "no words to learn a vocabulary from");
  std::vector<std::pair<std::vector<std::string>, int64_t>> words;
  for (const auto& [w, n] : counts) {
    std::vector<std::string> sym;
    for (unsigned char b : w) sym.push_back(byte_symbols()[b]);
    sym.back() += "</w>";
    words.emplace_back(std::move(sym), n);
  }

  std::vector<std::pair<std::string, std::string>> merges;
  while (base + static_cast<int>(merges.size()) < vocab_size) {
    // The most frequent adjacent pair; ties go to the smallest pair, so the result is the same
    // on every machine.
    std::map<std::pair<std::string, std::string>, int64_t> pairs;
    for (const auto& [sym, n] : words)
      for (size_t i = 0; i + 1 < sym.size(); ++i) pairs[{sym[i], sym[i + 1]}] += n;
    const std::pair<std::string, std::string>* best = nullptr;
    int64_t best_n = 1;
    for (const auto& [p, n] : pairs)
      if (n > best_n) best = &p, best_n = n;
    if (!best) break;
    const auto [a, b] = *best;
    merges.emplace_back(a, b);
    for (auto& word : words) merge_pair(word.first, a, b);
  }

  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  auto add = [&](const std::string& token) {
    if (!vocab.contains(token)) vocab[token] = static_cast<int64_t>(vocab.size());
  };
  for (const auto& s : byte_symbols()) add(s);
  for (const auto& s : byte_symbols()) add(s + "</w>");
  std::string merges_text = "#version: 0.2\n";
  for (const auto& [a, b] : merges) {
    add(a + b);
    merges_text += a + " " + b + "\n";
  }
  add("<|startoftext|>");
  add("<|endoftext|>");

  const nlohmann::json special = {{"bos_token", "<|startoftext|>"},
                                  {"eos_token", "<|endoftext|>"},
                                  {"unk_token", "<|endoftext|>"},
                                  {"pad_token", "<|endoftext|>"}};
  nlohmann::json config = special;
  config["tokenizer_class"] = "CLIPTokenizer";
  config["model_max_length"] = 77;
  config["do_lower_case"] = true;
  config["errors"] = "replace";
  io::make_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) { io::write_text_file(dir + "/" + name, text); };
  write("vocab.json", vocab.dump());
  write("merges.txt", merges_text);
  write("tokenizer_config.json", config.dump(2) + "\n");
  write("special_tokens_map.json", special.dump(2) + "\n");
  return static_cast<int>(vocab.size());
}

}  // namespace bioesp::text
