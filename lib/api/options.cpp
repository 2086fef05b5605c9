// C entry points for options by name (the table is option_table.cpp): describe, set, get and
// check fields; and the schedulers' names.
#include "api/options.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "api/option_table.h"
#include "core/strings.h"
#include "sched/names.h"

using namespace bioesp;
using options::Kind;
using options::Row;
using options::Store;

namespace {

const Kind& kind_of(bioesp_options_kind kind) {
  const auto& all = options::kinds();
  if (static_cast<size_t>(kind) >= all.size())
    fail(BIOESP_ERR_INVALID_ARGUMENT, "unknown options kind " + std::to_string(static_cast<int>(kind)));
  return all[kind];
}

const Row* find_row(const Kind& k, const std::string& key, bool by_flag) {
  for (const Row& r : k.rows)
    if (key == r.name || (by_flag && !r.flag.empty() && key == r.flag)) return &r;
  return nullptr;
}

const Row& row_named(const Kind& k, const char* name) {
  require(name != nullptr, "the option's name must not be NULL");
  const Row* r = find_row(k, name, false);
  if (!r) fail(BIOESP_ERR_NOT_FOUND, std::string(k.name) + " options have no field '" + name + "'");
  return *r;
}

bioesp_option_type type_of(Store s) {
  switch (s) {
    case Store::Bool: return BIOESP_OPTION_BOOL;
    case Store::Int: return BIOESP_OPTION_INT;
    case Store::U64: return BIOESP_OPTION_UINT64;
    case Store::Float: return BIOESP_OPTION_FLOAT;
    case Store::Double: return BIOESP_OPTION_DOUBLE;
    case Store::String: return BIOESP_OPTION_STRING;
    case Store::Enum:
    case Store::Text: return BIOESP_OPTION_CHOICE;
    case Store::Rgb: return BIOESP_OPTION_RGB;
    case Store::Strings: return BIOESP_OPTION_STRING_LIST;
    case Store::U64s: return BIOESP_OPTION_UINT64_LIST;
    case Store::Image: return BIOESP_OPTION_IMAGE;
    case Store::Function: return BIOESP_OPTION_FUNCTION;
    case Store::Pointer: return BIOESP_OPTION_POINTER;
    case Store::Size: return BIOESP_OPTION_SIZE;
  }
  return BIOESP_OPTION_POINTER;
}

void describe(const Row& r, bioesp_option* out) {
  bioesp_option o{};
  o.struct_size = sizeof o;
  o.name = r.name;
  o.flag = r.flag.empty() ? nullptr : r.flag.c_str();
  o.type = type_of(r.store);
  o.choices = r.choices.empty() ? nullptr : r.choices_text.c_str();
  o.min = r.min;
  o.max = r.max;
  o.min_exclusive = r.min_open;
  o.max_exclusive = r.max_open;
  o.help = r.help;
  o.not_exposed = r.hidden;
  o.count = r.count;
  write_output(out, o);
}

// The field in a caller's struct, which may be older (shorter) than the library's.
char* field_at(const Kind& k, const void* options, const Row& r) {
  require(options != nullptr, "options must not be NULL");
  size_t have;
  std::memcpy(&have, options, sizeof have);
  if (r.offset + r.size > have)
    fail(BIOESP_ERR_INVALID_ARGUMENT, std::string(r.name) + ": not in these " + k.name + " options (struct_size " +
                                          std::to_string(have) + ": compiled against an older bioesp.h)");
  return static_cast<char*>(const_cast<void*>(options)) + r.offset;
}

template <class T>
T load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class T>
void store(char* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

// The shortest text that reads back as the same T (float or double); whole numbers in full.
template <class T>
std::string shortest(T v) {
  char buf[64];
  if (std::nearbyint(v) == v && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", static_cast<double>(v));
    return buf;
  }
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, static_cast<double>(v));
    if (static_cast<T>(std::strtod(buf, nullptr)) == v) break;
  }
  return buf;
}

std::string bound_text(const Row& r, double v) { return r.store == Store::Float ? shortest(static_cast<float>(v)) : shortest(v); }

// "must be between 1 and 1000", "must be above 0 and at most 1", "must be at least 0", …
std::string range_text(const Row& r) {
  const bool lo = std::isfinite(r.min), hi = std::isfinite(r.max);
  if (lo && hi && !r.min_open && !r.max_open) return "between " + bound_text(r, r.min) + " and " + bound_text(r, r.max);
  std::string low = lo ? (r.min_open ? "above " : "at least ") + bound_text(r, r.min) : "";
  std::string high = hi ? (r.max_open ? "below " : "at most ") + bound_text(r, r.max) : "";
  return low + (lo && hi ? " and " : "") + high;
}

void check_range(const Row& r, double v, const std::string& shown) {
  if (!std::isfinite(v)) fail(BIOESP_ERR_INVALID_ARGUMENT, std::string(r.name) + ": must be a finite number, not " + shown);
  const bool low = r.min_open ? v <= r.min : v < r.min, high = r.max_open ? v >= r.max : v > r.max;
  if (low || high) fail(BIOESP_ERR_INVALID_ARGUMENT, std::string(r.name) + ": must be " + range_text(r) + ", not " + shown);
}

std::string choices_list(const Row& r) {
  std::string s;
  for (const auto& c : r.choices) s += (s.empty() ? "" : ", ") + c;
  return s;
}

[[noreturn]] void bad_text(const Row& r, const std::string& want, const char* text) {
  fail(BIOESP_ERR_INVALID_ARGUMENT, std::string(r.name) + ": must be " + want + ", not '" + text + "'");
}

long long parse_integer(const Row& r, const char* text) {
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text, &end, 10);
  if (!*text || *end || errno == ERANGE || v < INT_MIN || v > INT_MAX) bad_text(r, "an integer", text);
  return v;
}

uint64_t parse_u64(const Row& r, const char* text) {
  errno = 0;
  char* end = nullptr;
  uint64_t v = std::strtoull(text, &end, 10);
  if (!*text || *text == '-' || *text == '+' || *end || errno == ERANGE) bad_text(r, "a non-negative integer", text);
  return v;
}

double parse_number(const Row& r, const char* text) {
  char* end = nullptr;
  double v = std::strtod(text, &end);
  if (!*text || *end) bad_text(r, "a number", text);
  return v;
}

int parse_bool(const Row& r, const char* text) {
  const std::string t = to_lower(text);
  if (t == "1" || t == "true") return 1;
  if (t == "0" || t == "false") return 0;
  bad_text(r, "1, 0, true or false", text);
}

size_t parse_choice(const Row& r, const char* text) {
  for (size_t i = 0; i < r.choices.size(); ++i)
    if (r.choices[i] == text) return i;
  bad_text(r, "one of " + choices_list(r), text);
}

// A choice with settings after ':' ("euler:timestep_spacing=trailing"; ":…" keeps the default
// choice): only the name before the ':' is checked.
bool with_settings(const Row& r, const char* text) {
  const char* colon = std::strchr(text, ':');
  if (!r.settings || !colon) return false;
  const std::string name(text, colon);
  if (!name.empty()) parse_choice(r, name.c_str());
  return true;
}

// A string choice: NULL for "" (its default), the caller's text when it carries settings, else
// the table's own copy of the name.
const char* stored_choice(const Row& r, const char* text) {
  if (!text || !*text) return nullptr;
  if (with_settings(r, text)) return text;
  return r.choices[parse_choice(r, text)].c_str();
}

void parse_rgb(const Row& r, const char* text, char* p) {
  const char* hex = text[0] == '#' ? text + 1 : text;
  unsigned v[3];
  int used = 0;
  if (std::strlen(hex) != 6 || std::sscanf(hex, "%2x%2x%2x%n", &v[0], &v[1], &v[2], &used) != 3 || used != 6)
    bad_text(r, "a colour as RRGGBB", text);
  for (int i = 0; i < 3; ++i) p[i] = static_cast<char>(v[i]);
}

void set_text(const Row& r, const char* text, char* p) {
  if (r.store == Store::String) return store(p, text);
  if (r.store == Store::Text) return store(p, stored_choice(r, text));
  if (!text) fail(BIOESP_ERR_INVALID_ARGUMENT, std::string(r.name) + ": the text must not be NULL");
  switch (r.store) {
    case Store::Bool: return store(p, parse_bool(r, text));
    case Store::Int: {
      long long v = parse_integer(r, text);
      check_range(r, static_cast<double>(v), text);
      return store(p, static_cast<int>(v));
    }
    case Store::U64: return store(p, parse_u64(r, text));
    case Store::Float: {
      float v = static_cast<float>(parse_number(r, text));
      check_range(r, v, text);
      return store(p, v);
    }
    case Store::Double: {
      double v = parse_number(r, text);
      check_range(r, v, text);
      return store(p, v);
    }
    case Store::Enum: return store(p, static_cast<int>(parse_choice(r, text)));
    case Store::Rgb: return parse_rgb(r, text, p);
    default: fail(BIOESP_ERR_INVALID_ARGUMENT, std::string(r.name) + ": a list or image; set it with bioesp_option_set_list");
  }
}

std::string list_text(const Kind& k, const void* options, const Row& r, const char* p) {
  const size_t n = load<size_t>(field_at(k, options, row_named(k, r.count)));
  nlohmann::json a = nlohmann::json::array();
  if (r.store == Store::Strings) {
    const char* const* items = load<const char* const*>(p);
    for (size_t i = 0; items && i < n; ++i) a.push_back(items[i] ? nlohmann::json(items[i]) : nlohmann::json());
  } else {
    const uint64_t* items = load<const uint64_t*>(p);
    for (size_t i = 0; items && i < n; ++i) a.push_back(items[i]);
  }
  return a.dump();
}

std::string get_text(const Kind& k, const void* options, const Row& r) {
  const char* p = field_at(k, options, r);
  switch (r.store) {
    case Store::Bool: return load<int>(p) ? "true" : "false";
    case Store::Int: return std::to_string(load<int>(p));
    case Store::U64: return std::to_string(load<uint64_t>(p));
    case Store::Float: return shortest(load<float>(p));
    case Store::Double: return shortest(load<double>(p));
    case Store::String:
    case Store::Text: {
      const char* s = load<const char*>(p);
      return s ? s : "";
    }
    case Store::Enum: {
      int v = load<int>(p);
      return v >= 0 && static_cast<size_t>(v) < r.choices.size() ? r.choices[v] : std::to_string(v);
    }
    case Store::Rgb: {
      char buf[8];
      std::snprintf(buf, sizeof buf, "%02x%02x%02x", static_cast<uint8_t>(p[0]), static_cast<uint8_t>(p[1]), static_cast<uint8_t>(p[2]));
      return buf;
    }
    case Store::Strings:
    case Store::U64s: return list_text(k, options, r, p);
    case Store::Image: {
      const bioesp_image* img = load<const bioesp_image*>(p);
      return img ? std::to_string(img->width) + "x" + std::to_string(img->height) + "x" + std::to_string(img->channels) : "";
    }
    case Store::Size: return std::to_string(load<size_t>(p));
    default: fail(BIOESP_ERR_INVALID_ARGUMENT, std::string(r.name) + ": " + r.hidden);
  }
}

void check_list(const Kind& k, const void* options, const Row& r, const char* p) {
  const size_t n = load<size_t>(field_at(k, options, row_named(k, r.count)));
  const void* items = load<const void*>(p);
  if (n > 0 && !items) fail(BIOESP_ERR_INVALID_ARGUMENT, std::string(r.name) + ": NULL with " + r.count + " " + std::to_string(n));
  if (r.store != Store::Strings) return;
  const char* const* strings = static_cast<const char* const*>(items);
  for (size_t i = 0; i < n; ++i)
    if (!strings[i]) fail(BIOESP_ERR_INVALID_ARGUMENT, std::string(r.name) + "[" + std::to_string(i) + "] is NULL");
}

void check_row(const Kind& k, const void* options, const Row& r) {
  const char* p = field_at(k, options, r);
  switch (r.store) {
    case Store::Int: return check_range(r, load<int>(p), std::to_string(load<int>(p)));
    case Store::Float: return check_range(r, load<float>(p), shortest(load<float>(p)));
    case Store::Double: return check_range(r, load<double>(p), shortest(load<double>(p)));
    case Store::Enum: {
      int v = load<int>(p);
      if (v < 0 || static_cast<size_t>(v) >= r.choices.size())
        fail(BIOESP_ERR_INVALID_ARGUMENT, std::string(r.name) + ": must be one of " + choices_list(r) + ", not " + std::to_string(v));
      return;
    }
    case Store::Text: {
      const char* s = load<const char*>(p);
      if (s && *s && !with_settings(r, s)) parse_choice(r, s);
      return;
    }
    case Store::Strings:
    case Store::U64s: return check_list(k, options, r, p);
    default: return;
  }
}

}  // namespace

namespace bioesp {

void check_options(bioesp_options_kind kind, const void* options) {
  const Kind& k = kind_of(kind);
  for (const Row& r : k.rows) check_row(k, options, r);
}

}  // namespace bioesp

extern "C" {

const char* bioesp_options_kind_name(bioesp_options_kind kind) {
  const auto& all = options::kinds();
  return static_cast<size_t>(kind) < all.size() ? all[kind].name : nullptr;
}

bioesp_status bioesp_options_kind_find(const char* name, bioesp_options_kind* out) {
  return guard([&] {
    require(name && out, "name and out must not be NULL");
    const auto& all = options::kinds();
    for (size_t i = 0; i < all.size(); ++i)
      if (std::strcmp(all[i].name, name) == 0) return void(*out = static_cast<bioesp_options_kind>(i));
    fail(BIOESP_ERR_NOT_FOUND, std::string("no options kind named '") + name + "'");
  });
}

bioesp_status bioesp_options_new(bioesp_options_kind kind, void** out) {
  return guard([&] {
    require(out != nullptr, "out must not be NULL");
    *out = nullptr;
    const Kind& k = kind_of(kind);
    void* o = std::calloc(1, k.size);
    if (!o) throw std::bad_alloc();
    k.init(o);
    *out = o;
  });
}

void bioesp_options_free(void* options) { std::free(options); }

bioesp_status bioesp_option_count(bioesp_options_kind kind, size_t* out) {
  return guard([&] {
    require(out != nullptr, "out must not be NULL");
    *out = kind_of(kind).rows.size();
  });
}

bioesp_status bioesp_option_at(bioesp_options_kind kind, size_t index, bioesp_option* out) {
  return guard([&] {
    const Kind& k = kind_of(kind);
    if (index >= k.rows.size())
      fail(BIOESP_ERR_INVALID_ARGUMENT, "option index " + std::to_string(index) + " out of range (" + k.name + " has " +
                                            std::to_string(k.rows.size()) + ")");
    describe(k.rows[index], out);
  });
}

bioesp_status bioesp_option_find(bioesp_options_kind kind, const char* name_or_flag, bioesp_option* out) {
  return guard([&] {
    const Kind& k = kind_of(kind);
    require(name_or_flag != nullptr, "name_or_flag must not be NULL");
    const Row* r = find_row(k, name_or_flag, true);
    if (!r) fail(BIOESP_ERR_NOT_FOUND, std::string(k.name) + " options have no field or flag '" + name_or_flag + "'");
    describe(*r, out);
  });
}

bioesp_status bioesp_option_set(bioesp_options_kind kind, void* options, const char* name, const char* text) {
  return guard([&] {
    const Kind& k = kind_of(kind);
    const Row& r = row_named(k, name);
    if (r.hidden) fail(BIOESP_ERR_INVALID_ARGUMENT, std::string(name) + " is not set by name: " + r.hidden);
    set_text(r, text, field_at(k, options, r));
  });
}

bioesp_status bioesp_option_set_list(bioesp_options_kind kind, void* options, const char* name, const void* items,
                                     size_t count) {
  return guard([&] {
    const Kind& k = kind_of(kind);
    const Row& r = row_named(k, name);
    require(count == 0 || items != nullptr, "items must not be NULL");
    char* p = field_at(k, options, r);
    if (r.store == Store::Image) {
      if (count > 1) fail(BIOESP_ERR_INVALID_ARGUMENT, std::string(name) + ": one image, not " + std::to_string(count));
      return store(p, count ? static_cast<const bioesp_image*>(items) : nullptr);
    }
    if (r.store != Store::Strings && r.store != Store::U64s)
      fail(BIOESP_ERR_INVALID_ARGUMENT, std::string(name) + ": not a list; set it with bioesp_option_set");
    char* n = field_at(k, options, row_named(k, r.count));
    store(p, count ? items : nullptr);
    store(n, count);
  });
}

bioesp_status bioesp_option_get(bioesp_options_kind kind, const void* options, const char* name, char** text) {
  return guard([&] {
    require(text != nullptr, "text must not be NULL");
    *text = nullptr;
    const Kind& k = kind_of(kind);
    *text = dup_string(get_text(k, options, row_named(k, name)));
  });
}

bioesp_status bioesp_scheduler_count(size_t* out) {
  return guard([&] {
    require(out != nullptr, "out must not be NULL");
    *out = sched::scheduler_names().size();
  });
}

bioesp_status bioesp_scheduler_name(size_t index, const char** out) {
  return guard([&] {
    require(out != nullptr, "out must not be NULL");
    const auto& names = sched::scheduler_names();
    if (index >= names.size())
      fail(BIOESP_ERR_INVALID_ARGUMENT, "scheduler index " + std::to_string(index) + " out of range (" +
                                            std::to_string(names.size()) + " schedulers)");
    *out = names[index].c_str();
  });
}

}  // extern "C"
