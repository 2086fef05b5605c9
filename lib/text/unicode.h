// The Unicode the CLIP tokenizer needs: UTF-8, NFC, full lower-casing, and the \p{L}, \p{N} and
// \s classes of its pre-tokenisation pattern; the decimal digits of the prompt parser (tables
// generated from the Unicode database).
#pragma once

#include <string>
#include <vector>

namespace bioesp::text {

// Invalid UTF-8 bytes decode to U+FFFD, as Rust's from_utf8_lossy does.
std::u32string utf8_decode(const std::string& s);
std::string utf8_encode(const std::u32string& s);
void utf8_append(std::string& out, char32_t c);

bool is_letter(char32_t c);
bool is_number(char32_t c);
bool is_space(char32_t c);
// The value of a decimal digit (category Nd: what Python's \d matches), or -1.
int decimal_value(char32_t c);

std::u32string nfc(const std::u32string& s);
std::u32string to_lower(const std::u32string& s);

}  // namespace bioesp::text
