// The library's options table as the studio uses it. A request's keys are bioesp.h's field names
// ("steps", "negative_prompt", "learning_rate"), each value checked against the table's row (its
// type, its range, its choices; the studio's messages, in the page's language), then against the
// studio's tighter service limits (rules.h), and set with bioesp_option_set, which parses it as
// the command line and the bindings do. The studio keeps some fields for itself — its folders, its
// model, callbacks, a page's prompt and picture — and GET /api/options lists, for each kind it
// takes, every field: the row of one a page may set, or the reason it may not.
#pragma once
#include <bioesp.h>

#include <deque>
#include <initializer_list>
#include <string>

#include <nlohmann/json.hpp>

namespace studio {

using nlohmann::json;

// One options struct of a kind, from its init function, set by field name.
class Fields {
 public:
  explicit Fields(bioesp_options_kind kind);
  ~Fields();
  Fields(const Fields&) = delete;
  Fields& operator=(const Fields&) = delete;

  template <typename T>
  T& as() {
    return *static_cast<T*>(options_);
  }
  // The fields of this kind a page may set, from `request` (400 naming the field for a value of
  // the wrong type or out of range). Other keys are left alone; null, or "" for a field that is
  // not text, leaves the default.
  void take(const json& request);
  // A field the studio sets itself (its folders, its model): the library checks it.
  void set(const char* name, const std::string& text);
  void set_list(const char* name, const void* items, size_t count);
  // Every field a page may set, with the value it has now (set or default): what a saved entry
  // needs to be drawn (or trained) again.
  json values() const;

 private:
  bioesp_options_kind kind_;
  void* options_ = nullptr;
  std::deque<std::string> texts_;  // the library keeps STRING fields' pointers: they live here
};

// A 400 naming the first key of `request` that is neither a field a page may set for one of
// `kinds` (a field kept by the studio gets its reason) nor one of the studio's own `keys`.
void refuse_unknown(const json& request, std::initializer_list<bioesp_options_kind> kinds,
                    std::initializer_list<const char*> keys);

// GET /api/options (and `bioesp studio --options`): {KIND: {FIELD: ROW or "why a page does not
// set it"}} for every kind the studio takes, every field of the table; a ROW is {"type", "help",
// "default", "min", "max" (numbers; null where unbounded), "choices" (a list)}, its range the
// table's narrowed by the studio's limits.
json options_listing();

}  // namespace studio
