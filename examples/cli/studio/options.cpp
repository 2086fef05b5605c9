#include "options.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

#include "request.h"
#include "rules.h"
#include "strings.h"
#include "studio.h"

namespace studio {
namespace {

// Fields the studio sets itself, and why (a key of the string tables). A page never names a path
// or an address of this machine: a text field is set from a request only when kTexts lists it.
struct Kept {
  bioesp_options_kind kind;
  const char* field;
  const char* reason;
};
const Kept kKept[] = {
    {BIOESP_OPTIONS_GENERATE, "prompts", "kept_prompt"},
    {BIOESP_OPTIONS_GENERATE, "images_per_prompt", "kept_images"},
    {BIOESP_OPTIONS_GENERATE, "seed", "kept_seed"},
    {BIOESP_OPTIONS_GENERATE, "init_image", "kept_init"},
    {BIOESP_OPTIONS_GENERATE, "mask", "kept_mask"},
    {BIOESP_OPTIONS_GENERATE, "preview_every", "kept_preview"},
    {BIOESP_OPTIONS_ANIMATE, "prompts", "kept_keyframes"},
    {BIOESP_OPTIONS_ANIMATE, "seeds", "kept_keyframes"},
    {BIOESP_OPTIONS_TRAIN, "model", "kept_model"},
    {BIOESP_OPTIONS_TRAIN, "config_dir", "kept_model"},
    {BIOESP_OPTIONS_TRAIN, "data", "kept_dataset"},
    {BIOESP_OPTIONS_TRAIN, "out", "kept_training"},
    {BIOESP_OPTIONS_TRAIN, "resume", "kept_resume"},
    {BIOESP_OPTIONS_TRAIN, "device", "kept_command_line"},
    {BIOESP_OPTIONS_TRAIN, "device_index", "kept_command_line"},
    {BIOESP_OPTIONS_TRAIN, "threads", "kept_command_line"},
    {BIOESP_OPTIONS_TRAIN, "full", "kept_lora"},
    {BIOESP_OPTIONS_TRAIN, "train_vae", "kept_lora"},
    {BIOESP_OPTIONS_TRAIN, "save_half", "kept_lora"},
    {BIOESP_OPTIONS_TRAIN, "world_size", "kept_processes"},
    {BIOESP_OPTIONS_TRAIN, "process_rank", "kept_processes"},
    {BIOESP_OPTIONS_TRAIN, "local_rank", "kept_processes"},
    {BIOESP_OPTIONS_TRAIN, "master_port", "kept_processes"},
    {BIOESP_OPTIONS_FETCH, "contact", "kept_command_line"},
    {BIOESP_OPTIONS_FETCH, "api", "kept_command_line"},
};

// The text fields a page may write (prompts, captions, lists of words); every other text field
// is a path or an address.
const Kept kTexts[] = {
    {BIOESP_OPTIONS_GENERATE, "negative_prompt", nullptr}, {BIOESP_OPTIONS_ANIMATE, "negative_prompt", nullptr},
    {BIOESP_OPTIONS_TRAIN, "prompt", nullptr},             {BIOESP_OPTIONS_TRAIN, "class_prompt", nullptr},
    {BIOESP_OPTIONS_TRAIN, "validation_prompt", nullptr},  {BIOESP_OPTIONS_FETCH, "value", nullptr},
    {BIOESP_OPTIONS_FETCH, "licenses", nullptr},           {BIOESP_OPTIONS_FETCH, "keywords", nullptr},
    {BIOESP_OPTIONS_PREPARE, "caption", nullptr}};

// The kinds the studio passes to the library: generate, animate (and its file), fetch then
// prepare, train.
const bioesp_options_kind kTaken[] = {BIOESP_OPTIONS_GENERATE, BIOESP_OPTIONS_ANIMATE, BIOESP_OPTIONS_ANIMATION,
                                      BIOESP_OPTIONS_FETCH,    BIOESP_OPTIONS_PREPARE, BIOESP_OPTIONS_TRAIN};

template <size_t N>
const Kept* find(const Kept (&table)[N], bioesp_options_kind kind, const std::string& field) {
  for (const Kept& k : table)
    if (k.kind == kind && field == k.field) return &k;
  return nullptr;
}

const rules::Limit* limit_of(bioesp_options_kind kind, const std::string& field) {
  const std::string name = bioesp_options_kind_name(kind);
  for (const auto& l : rules::limits)
    if (name == l.kind && field == l.field) return &l;
  return nullptr;
}

// Why a page may not set this field ("" when it may): the library's reason (callbacks, counts),
// or the studio's.
std::string refusal(bioesp_options_kind kind, const bioesp_option& o) {
  if (o.not_exposed) return o.not_exposed;
  if (const Kept* k = find(kKept, kind, o.name)) return say(k->reason);
  if (o.type == BIOESP_OPTION_STRING && !find(kTexts, kind, o.name)) return say("kept_paths");
  if (o.type == BIOESP_OPTION_STRING_LIST || o.type == BIOESP_OPTION_UINT64_LIST || o.type == BIOESP_OPTION_IMAGE)
    return say("kept_lists");
  return "";
}

// The row named exactly `name` (not a flag), if the kind has one.
bool row(bioesp_options_kind kind, const std::string& name, bioesp_option* o) {
  o->struct_size = sizeof *o;
  return bioesp_option_find(kind, name.c_str(), o) == BIOESP_OK && name == o->name;
}

bool numeric(bioesp_option_type t) {
  return t == BIOESP_OPTION_INT || t == BIOESP_OPTION_UINT64 || t == BIOESP_OPTION_FLOAT || t == BIOESP_OPTION_DOUBLE ||
         t == BIOESP_OPTION_SIZE;
}
bool whole(bioesp_option_type t) { return t == BIOESP_OPTION_INT || t == BIOESP_OPTION_UINT64 || t == BIOESP_OPTION_SIZE; }

// A number field's range: the table's, narrowed by the studio's limit.
std::pair<double, double> range_of(bioesp_options_kind kind, const bioesp_option& o) {
  double lo = o.min, hi = o.max;
  if (o.type == BIOESP_OPTION_UINT64) lo = std::max(lo, 0.0);
  if (const rules::Limit* l = limit_of(kind, o.name)) lo = std::max(lo, l->min), hi = std::min(hi, l->max);
  return {lo, hi};
}

std::vector<std::string> choices_of(const bioesp_option& o) {
  std::vector<std::string> out;
  for (const char *c = o.choices, *bar; c; c = bar ? bar + 1 : nullptr) {
    bar = std::strchr(c, '|');
    out.emplace_back(c, bar ? bar - c : std::strlen(c));
  }
  return out;
}

// A request's number, checked in the studio's words, as the text bioesp_option_set reads.
std::string number_of(bioesp_options_kind kind, const bioesp_option& o, const json& request) {
  const auto [lo, hi] = range_of(kind, o);
  const double v = number_field(request, o.name, 0, lo, hi);
  const std::string field = field_name(o.name);
  if (whole(o.type) && v != std::floor(v)) throw HttpError(400, say("must_be_whole", {{"field", field}}));
  if (o.min_exclusive && v == o.min) throw HttpError(400, say("must_be_above", {{"field", field}, {"lo", number_text(o.min)}}));
  if (o.max_exclusive && v == o.max) throw HttpError(400, say("must_be_below", {{"field", field}, {"hi", number_text(o.max)}}));
  const rules::Limit* l = limit_of(kind, o.name);
  if (l && l->multiple_of_8 && std::fmod(v, 8) != 0) throw HttpError(400, say("must_be_multiple_of_8", {{"field", field}}));
  const json& j = request[o.name];
  return j.is_string() ? j.get<std::string>() : j.dump();
}

// A choice (the scheduler's may carry from_config settings after a ':'), checked by its name.
std::string choice_of(const bioesp_option& o, const json& request) {
  const std::string v = text_field(request, o.name);
  const auto choices = choices_of(o);
  if (std::find(choices.begin(), choices.end(), v.substr(0, v.find(':'))) != choices.end()) return v;
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
  throw HttpError(400, say("must_be_one_of", {{"field", field_name(o.name)}, {"choices", list}}));
}

std::string text_of(bioesp_options_kind kind, const bioesp_option& o, const json& request) {
  if (o.type == BIOESP_OPTION_BOOL) return bool_field(request, o.name, false) ? "true" : "false";
  if (o.type == BIOESP_OPTION_CHOICE) return choice_of(o, request);
  if (numeric(o.type)) return number_of(kind, o, request);
  return text_field(request, o.name);
}

// The text bioesp_option_get gives, as JSON of the field's type.
json value_of(const bioesp_option& o, const std::string& text) {
  if (o.type == BIOESP_OPTION_BOOL) return text == "1" || text == "true";
  if (o.type == BIOESP_OPTION_UINT64 || o.type == BIOESP_OPTION_SIZE) return std::strtoull(text.c_str(), nullptr, 10);
  if (o.type == BIOESP_OPTION_INT) return std::strtoll(text.c_str(), nullptr, 10);
  if (numeric(o.type)) return std::strtod(text.c_str(), nullptr);
  return text;
}

const char* type_name(bioesp_option_type t) {
  switch (t) {
    case BIOESP_OPTION_BOOL: return "bool";
    case BIOESP_OPTION_INT: return "int";
    case BIOESP_OPTION_UINT64: return "uint64";
    case BIOESP_OPTION_FLOAT: return "float";
    case BIOESP_OPTION_DOUBLE: return "double";
    case BIOESP_OPTION_CHOICE: return "choice";
    case BIOESP_OPTION_RGB: return "rgb";
    default: return "text";
  }
}

template <typename F>
void each_field(bioesp_options_kind kind, F f) {
  size_t n = 0;
  bioesp_option_count(kind, &n);
  for (size_t i = 0; i < n; ++i) {
    bioesp_option o;
    o.struct_size = sizeof o;
    if (bioesp_option_at(kind, i, &o) == BIOESP_OK) f(o);
  }
}

json row_json(bioesp_options_kind kind, const bioesp_option& o, const json& defaults) {
  json f{{"type", type_name(o.type)}, {"help", o.help ? o.help : ""}, {"default", defaults.value(o.name, json())}};
  if (numeric(o.type)) {
    const auto [lo, hi] = range_of(kind, o);
    f["min"] = std::isfinite(lo) ? json(lo) : json(nullptr);
    f["max"] = std::isfinite(hi) ? json(hi) : json(nullptr);
    const rules::Limit* l = limit_of(kind, o.name);
    f["step"] = l && l->multiple_of_8 ? json(8) : whole(o.type) ? json(1) : json(nullptr);
  }
  if (o.choices) f["choices"] = choices_of(o);
  return f;
}

}  // namespace

Fields::Fields(bioesp_options_kind kind) : kind_(kind) {
  if (bioesp_options_new(kind, &options_) != BIOESP_OK) throw std::runtime_error(last_error("options"));
  for (const auto& d : rules::defaults)
    if (d.kind == std::string(bioesp_options_kind_name(kind))) set(d.field, d.text);
}

Fields::~Fields() { bioesp_options_free(options_); }

void Fields::take(const json& request) {
  for (const auto& item : request.items()) {
    bioesp_option o;
    if (item.value().is_null() || !row(kind_, item.key(), &o) || !refusal(kind_, o).empty()) continue;
    if (o.type != BIOESP_OPTION_STRING && item.value().is_string() && item.value().get<std::string>().empty()) continue;
    set(o.name, text_of(kind_, o, request));
  }
}

void Fields::set(const char* name, const std::string& text) {
  texts_.push_back(text);
  if (bioesp_option_set(kind_, options_, name, texts_.back().c_str()) != BIOESP_OK) throw HttpError(400, bioesp_last_error());
}

void Fields::set_list(const char* name, const void* items, size_t count) {
  if (bioesp_option_set_list(kind_, options_, name, items, count) != BIOESP_OK) throw HttpError(400, bioesp_last_error());
}

json Fields::values() const {
  json out = json::object();
  each_field(kind_, [&](const bioesp_option& o) {
    char* text = nullptr;
    if (refusal(kind_, o).empty() && bioesp_option_get(kind_, options_, o.name, &text) == BIOESP_OK) out[o.name] = value_of(o, text);
    bioesp_string_free(text);
  });
  return out;
}

void refuse_unknown(const json& request, std::initializer_list<bioesp_options_kind> kinds, std::initializer_list<const char*> keys) {
  for (const auto& item : request.items()) {
    bool known = false;
    for (const char* k : keys) known |= item.key() == k;
    std::string why;
    for (auto kind : kinds) {
      bioesp_option o;
      if (known || !row(kind, item.key(), &o)) continue;
      why = refusal(kind, o);
      known = why.empty();
    }
    if (!known && !why.empty()) throw HttpError(400, say("not_settable", {{"field", field_name(item.key())}, {"why", why}}));
    if (!known) throw HttpError(400, say("no_such_field", {{"field", field_name(item.key())}}));
  }
}

json options_listing() {
  json out = json::object();
  for (const auto kind : kTaken) {
    const json defaults = Fields(kind).values();
    json fields = json::object();
    each_field(kind, [&](const bioesp_option& o) {
      const std::string why = refusal(kind, o);
      fields[o.name] = why.empty() ? row_json(kind, o, defaults) : json(why);
    });
    out[bioesp_options_kind_name(kind)] = fields;
  }
  return out;
}

}  // namespace studio
