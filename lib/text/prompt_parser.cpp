#include "text/prompt_parser.h"

#include <cfloat>
#include <charconv>
#include <cmath>

#include "core/error.h"
#include "text/unicode.h"

namespace bioesp::text {
namespace {

constexpr double kRound = 1.1, kSquare = 1 / 1.1;

// Python's str.isspace, what \s matches in A1111's patterns: the tokenizer's whitespace and the
// information separators U+001C–U+001F.
bool py_space(char32_t c) { return is_space(c) || (c >= 0x1C && c <= 0x1F); }
// Python's \w, which decides \b: letters, numbers and the underscore.
bool py_word(char32_t c) { return c == U'_' || is_letter(c) || is_number(c); }
bool special(char32_t c) { return c == U'\\' || c == U'(' || c == U')' || c == U'[' || c == U']' || c == U':'; }
bool escapable(char32_t c) { return c == U'\\' || c == U'(' || c == U')' || c == U'[' || c == U']'; }

// Up to 40 characters of text, for messages.
std::string excerpt(const std::u32string& s) {
  return s.size() <= 40 ? utf8_encode(s) : utf8_encode(s.substr(0, 40)) + "…";
}

// Where ":\s*([+-]?[.\d]+)\s*\)" matches at s[i] (a ':'): one past its ')', with the captured
// number in *number; 0 where it does not match.
size_t weight_at(const std::u32string& s, size_t i, std::u32string* number) {
  size_t j = i + 1;
  while (j < s.size() && py_space(s[j])) ++j;
  const size_t from = j;
  if (j < s.size() && (s[j] == U'+' || s[j] == U'-')) ++j;
  const size_t digits = j;
  while (j < s.size() && (s[j] == U'.' || decimal_value(s[j]) >= 0)) ++j;
  if (j == digits) return 0;
  *number = s.substr(from, j - from);
  while (j < s.size() && py_space(s[j])) ++j;
  return j < s.size() && s[j] == U')' ? j + 1 : 0;
}

// Python's float() of a captured number (digits of any script); `where` names it in the error.
double python_float(const std::u32string& number, const std::u32string& where) {
  std::string ascii;
  int dots = 0;
  bool digits = false, whole = false;  // whole: a nonzero digit before the dot
  for (char32_t c : number) {
    if (c == U'+') continue;  // from_chars takes no plus sign
    if (c == U'.') ++dots;
    const int d = decimal_value(c);
    digits = digits || d >= 0;
    whole = whole || (dots == 0 && d > 0);
    ascii += d >= 0 ? static_cast<char>('0' + d) : static_cast<char>(c);
  }
  if (!digits || dots > 1) fail(BIOESP_ERR_INVALID_ARGUMENT, "prompt: the weight in '" + excerpt(where) + "' is not a number");
  // Every character is read; out of range is where Python overflows to inf or underflows to 0.
  double v = 0;
  if (std::from_chars(ascii.data(), ascii.data() + ascii.size(), v).ec == std::errc::result_out_of_range)
    v = std::copysign(whole ? HUGE_VAL : 0.0, ascii[0] == '-' ? -1.0 : 1.0);
  return v;
}

struct Run {
  std::u32string text;
  double weight;
};

// The state of A1111's loop: the runs so far and where each open bracket began.
struct Parser {
  std::vector<Run> res;
  std::vector<size_t> round, square;

  void multiply_range(size_t from, double m) {
    for (size_t p = from; p < res.size(); ++p) res[p].weight *= m;
  }
  void open(std::vector<size_t>& stack, size_t at) {
    if (round.size() + square.size() == kMaxBracketDepth)
      fail(BIOESP_ERR_INVALID_ARGUMENT, "prompt: brackets nested more than " + std::to_string(kMaxBracketDepth) +
                                            " deep (at character " + std::to_string(at + 1) + ")");
    stack.push_back(res.size());
  }
  void close(std::vector<size_t>& stack, double m) {
    const size_t from = stack.back();
    stack.pop_back();
    multiply_range(from, m);
  }
  // Text, split as re.split(r"\s*\bBREAK\b\s*", text) splits it, with a BREAK between the parts.
  void plain(const std::u32string& text) {
    static const std::u32string kBreak = U"BREAK";
    size_t part = 0;  // where the current part begins
    for (size_t b = text.find(kBreak); b != std::u32string::npos; b = text.find(kBreak, std::max(b + 1, part))) {
      const size_t e = b + kBreak.size();
      if ((b > 0 && py_word(text[b - 1])) || (e < text.size() && py_word(text[e]))) continue;
      size_t start = b, end = e;
      while (start > part && py_space(text[start - 1])) --start;
      while (end < text.size() && py_space(text[end])) ++end;
      res.push_back({text.substr(part, start - part), 1.0});
      res.push_back({kBreak, -1.0});
      part = end;
    }
    res.push_back({text.substr(part), 1.0});
  }
};

// Adjacent runs of equal weight merged; every weight checked to be a finite float32.
std::vector<WeightedText> merged(const std::vector<Run>& res) {
  std::vector<WeightedText> out;
  std::vector<const Run*> firsts;
  for (const Run& r : res) {
    if (!out.empty() && out.back().weight == r.weight) {
      out.back().text += utf8_encode(r.text);
    } else {
      out.push_back({utf8_encode(r.text), r.weight});
      firsts.push_back(&r);
    }
  }
  for (size_t k = 0; k < out.size(); ++k)
    if (!(std::fabs(out[k].weight) <= FLT_MAX))
      fail(BIOESP_ERR_INVALID_ARGUMENT, "prompt: the weight of '" + excerpt(firsts[k]->text) +
                                            "' is not a finite number (" + std::to_string(out[k].weight) + ")");
  return out;
}

}  // namespace

bool is_break(const WeightedText& t) { return t.weight == -1.0 && t.text == "BREAK"; }

std::vector<WeightedText> parse_prompt_attention(const std::string& prompt) {
  const std::u32string s = utf8_decode(prompt);
  Parser p;
  for (size_t i = 0; i < s.size();) {
    const char32_t c = s[i];
    if (c == U'\\') {  // an escape gives its character; a lone backslash gives nothing
      const bool escape = i + 1 < s.size() && escapable(s[i + 1]);
      p.res.push_back({escape ? s.substr(i + 1, 1) : U"", 1.0});
      i += escape ? 2 : 1;
    } else if (c == U'(' || c == U'[') {
      p.open(c == U'(' ? p.round : p.square, i);
      ++i;
    } else if (c == U':') {
      std::u32string number;
      const size_t end = weight_at(s, i, &number);
      if (end && !p.round.empty()) {
        p.close(p.round, python_float(number, s.substr(i, end - i)));
      } else {
        p.plain(s.substr(i, end ? end - i : 1));
      }
      i = end ? end : i + 1;
    } else if (c == U')' || c == U']') {
      auto& stack = c == U')' ? p.round : p.square;
      if (stack.empty()) {
        p.plain(s.substr(i, 1));  // unmatched: text
      } else {
        p.close(stack, c == U')' ? kRound : kSquare);
      }
      ++i;
    } else {
      size_t j = i + 1;
      while (j < s.size() && !special(s[j])) ++j;
      p.plain(s.substr(i, j - i));
      i = j;
    }
  }
  for (size_t at : p.round) p.multiply_range(at, kRound);
  for (size_t at : p.square) p.multiply_range(at, kSquare);
  if (p.res.empty()) p.res.push_back({U"", 1.0});
  return merged(p.res);
}

}  // namespace bioesp::text
