// The rows of the options table (option_table.cpp): one per field of every public options struct,
// pointing at the field with offsetof and checked against its C type when compiled.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "bioesp.h"

namespace bioesp::options {

// How a field is stored; the public bioesp_option_type follows from it.
enum class Store { Bool, Int, U64, Float, Double, String, Enum, Text, Rgb, Strings, U64s, Image, Function, Pointer, Size };

// Whether a field of C type T can hold a value stored as S (checked at compile time).
template <Store S, class T>
constexpr bool fits() {
  switch (S) {
    case Store::Bool:
    case Store::Int: return std::is_same_v<T, int>;
    case Store::U64: return std::is_same_v<T, uint64_t>;
    case Store::Float: return std::is_same_v<T, float>;
    case Store::Double: return std::is_same_v<T, double>;
    case Store::String:
    case Store::Text: return std::is_same_v<T, const char*>;
    case Store::Enum: return std::is_enum_v<T> && sizeof(T) == sizeof(int);
    case Store::Rgb: return std::is_same_v<T, uint8_t[3]>;
    case Store::Strings: return std::is_same_v<T, const char* const*>;
    case Store::U64s: return std::is_same_v<T, const uint64_t*>;
    case Store::Image: return std::is_same_v<T, const bioesp_image*>;
    case Store::Function: return std::is_pointer_v<T> && std::is_function_v<std::remove_pointer_t<T>>;
    case Store::Pointer: return std::is_same_v<T, void*>;
    case Store::Size: return std::is_same_v<T, size_t>;
  }
  return false;
}

struct Row {
  const char* name;
  size_t offset, size;
  Store store;
  std::string flag;  // derived from the name unless given; empty when not set by name
  const char* help = "";
  double min = -HUGE_VAL, max = HUGE_VAL;
  bool min_open = false, max_open = false;
  std::vector<std::string> choices;  // Enum: value i is choices[i]; Text: the allowed strings
  std::string choices_text;          // "a|b|c"
  bool settings = false;             // Text: "choice:settings" too (the scheduler's from_config keys)
  const char* count = nullptr;       // lists: the field holding the length
  const char* hidden = nullptr;      // why it is not set by name

  Row(const char* n, size_t off, size_t sz, Store s) : name(n), offset(off), size(sz), store(s) {}
  Row& cli(const char* f) { flag = f; return *this; }
  Row& about(const char* h) { help = h; return *this; }
  Row& range(double lo, double hi) { min = lo, max = hi; return *this; }
  Row& at_least(double lo) { min = lo; return *this; }
  Row& above(double lo) { min = lo, min_open = true; return *this; }
  Row& at_most(double hi) { max = hi; return *this; }
  Row& below(double hi) { max = hi, max_open = true; return *this; }
  Row& one_of(std::vector<std::string> c);
  Row& with_settings() { settings = true; return *this; }
  Row& counted_by(const char* c) { count = c; return *this; }
  Row& not_exposed(const char* why) { hidden = why; return *this; }
};

template <Store S, class T>
Row make_row(const char* name, size_t offset) {
  static_assert(fits<S, T>(), "the options table gives a field a type its C declaration does not have");
  return Row(name, offset, sizeof(T), S);
}

struct Kind {
  const char* name;
  size_t size;
  void (*init)(void*);
  std::vector<Row> rows;
};

// Every kind, indexed by bioesp_options_kind, built once.
const std::vector<Kind>& kinds();

}  // namespace bioesp::options
