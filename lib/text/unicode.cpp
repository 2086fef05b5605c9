#include "text/unicode.h"

#include <algorithm>

namespace bioesp::text {
namespace {

struct Range { char32_t lo, hi; };
struct LowerMap { char32_t cp; char32_t to[2]; };
struct CombiningClass { char32_t cp; int ccc; };
struct Decomposition { char32_t cp, a, b; };
struct Composition { char32_t a, b, cp; };

#include "text/unicode_tables.inc"

// The range holding c, or nullptr.
template <size_t N>
const Range* range_of(const Range (&r)[N], char32_t c) {
  auto it = std::upper_bound(std::begin(r), std::end(r), c, [](char32_t v, const Range& x) { return v < x.lo; });
  return it != std::begin(r) && c <= (it - 1)->hi ? it - 1 : nullptr;
}


int combining_class(char32_t c) {
  auto it = std::lower_bound(std::begin(kCombining), std::end(kCombining), c,
                             [](const CombiningClass& x, char32_t v) { return x.cp < v; });
  return it != std::end(kCombining) && it->cp == c ? it->ccc : 0;
}

// Hangul syllables compose and decompose arithmetically.
constexpr char32_t SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
constexpr int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

void decompose(char32_t c, std::u32string& out) {
  if (c >= SBase && c < SBase + SCount) {
    int s = static_cast<int>(c - SBase);
    out += static_cast<char32_t>(LBase + s / NCount);
    out += static_cast<char32_t>(VBase + (s % NCount) / TCount);
    if (s % TCount) out += static_cast<char32_t>(TBase + s % TCount);
    return;
  }
  auto it = std::lower_bound(std::begin(kDecompositions), std::end(kDecompositions), c,
                             [](const Decomposition& x, char32_t v) { return x.cp < v; });
  if (it == std::end(kDecompositions) || it->cp != c) {
    out += c;
    return;
  }
  decompose(it->a, out);
  if (it->b) decompose(it->b, out);
}

char32_t compose(char32_t a, char32_t b) {
  if (a >= LBase && a < LBase + LCount && b >= VBase && b < VBase + VCount)
    return SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
  if (a >= SBase && a < SBase + SCount && (a - SBase) % TCount == 0 && b > TBase && b < TBase + TCount)
    return a + (b - TBase);
  auto it = std::lower_bound(std::begin(kCompositions), std::end(kCompositions), std::make_pair(a, b),
                             [](const Composition& x, const std::pair<char32_t, char32_t>& v) {
                               return x.a != v.first ? x.a < v.first : x.b < v.second;
                             });
  return it != std::end(kCompositions) && it->a == a && it->b == b ? it->cp : 0;
}

}  // namespace

void utf8_append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

std::u32string utf8_decode(const std::string& s) {
  std::u32string out;
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char b = s[i];
    int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    char32_t c = len == 1 ? b : len == 2 ? b & 0x1F : len == 3 ? b & 0x0F : b & 0x07;
    bool ok = len > 0 && i + len <= n;
    for (int k = 1; ok && k < len; ++k) {
      unsigned char x = s[i + k];
      if ((x & 0xC0) != 0x80) ok = false;
      c = (c << 6) | (x & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid too.
    static const char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (ok && (c < kMin[len] || (c >= 0xD800 && c < 0xE000) || c > 0x10FFFF)) ok = false;
    if (!ok) {
      out += U'\uFFFD';
      ++i;
      continue;
    }
    out += c;
    i += len;
  }
  return out;
}

std::string utf8_encode(const std::u32string& s) {
  std::string out;
  for (char32_t c : s) utf8_append(out, c);
  return out;
}

bool is_letter(char32_t c) { return range_of(kLetters, c) != nullptr; }
bool is_number(char32_t c) { return range_of(kNumbers, c) != nullptr; }
int decimal_value(char32_t c) {
  const Range* r = range_of(kDecimals, c);
  return r ? static_cast<int>((c - r->lo) % 10) : -1;  // every run of Nd digits starts at a zero
}

bool is_space(char32_t c) {
  return (c >= 0x9 && c <= 0xD) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

std::u32string to_lower(const std::u32string& s) {
  std::u32string out;
  for (char32_t c : s) {
    auto it = std::lower_bound(std::begin(kLower), std::end(kLower), c,
                               [](const LowerMap& x, char32_t v) { return x.cp < v; });
    if (it != std::end(kLower) && it->cp == c) {
      out += it->to[0];
      if (it->to[1]) out += it->to[1];
    } else {
      out += c;
    }
  }
  return out;
}

std::u32string nfc(const std::u32string& s) {
  std::u32string d;
  for (char32_t c : s) decompose(c, d);
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < d.size();) {
    if (!combining_class(d[i])) { ++i; continue; }
    size_t j = i;
    while (j < d.size() && combining_class(d[j])) ++j;
    std::stable_sort(d.begin() + i, d.begin() + j,
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  // Canonical composition: a character joins the last starter unless something between them
  // is a starter or has a combining class at least its own.
  std::u32string out;
  size_t starter = std::u32string::npos;
  int last_ccc = 0;
  for (char32_t c : d) {
    int ccc = combining_class(c);
    if (starter != std::u32string::npos) {
      bool blocked = out.size() > starter + 1 && (last_ccc == 0 || last_ccc >= ccc);
      if (!blocked)
        if (char32_t comp = compose(out[starter], c)) {
          out[starter] = comp;
          continue;
        }
    }
    if (ccc == 0) starter = out.size();
    last_ccc = ccc;
    out += c;
  }
  return out;
}

}  // namespace bioesp::text
