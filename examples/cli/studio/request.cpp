#include "request.h"

#include <cmath>
#include <cstdlib>

#include "files.h"
#include "rules.h"
#include "strings.h"

namespace studio {
namespace {

bool absent(const json& j, const char* key) { return !j.contains(key) || j[key].is_null(); }

}  // namespace

json body_of(const std::string& body) {
  json j = parse_json(body);
  if (j.is_discarded() || !j.is_object()) throw HttpError(400, say("not_json_object"));
  return j;
}

std::string text_field(const json& j, const char* key) {
  if (absent(j, key)) return "";
  if (!j[key].is_string()) throw HttpError(400, say("must_be_text", {{"field", field_name(key)}}));
  std::string s = j[key];
  if (s.size() > rules::max_text)
    throw HttpError(400, say("too_long", {{"field", field_name(key)}, {"max", std::to_string(rules::max_text)}}));
  return s;
}

double number_field(const json& j, const char* key, double fallback, double lo, double hi) {
  if (absent(j, key) || (j[key].is_string() && j[key].get<std::string>().empty())) return fallback;
  double v = NAN;
  if (j[key].is_number()) {
    v = j[key].get<double>();
  } else if (j[key].is_string()) {
    const std::string s = j[key];
    char* end = nullptr;
    v = std::strtod(s.c_str(), &end);
    if (*end) v = NAN;
  }
  if (std::isnan(v)) throw HttpError(400, say("must_be_number", {{"field", field_name(key)}}));
  if (!(v >= lo && v <= hi))
    throw HttpError(400, say("must_be_between", {{"field", field_name(key)}, {"lo", number_text(lo)}, {"hi", number_text(hi)}}));
  return v;
}

int int_field(const json& j, const char* key, int fallback, int lo, int hi) {
  return static_cast<int>(number_field(j, key, fallback, lo, hi));
}

bool bool_field(const json& j, const char* key, bool fallback) {
  if (absent(j, key)) return fallback;
  if (!j[key].is_boolean()) throw HttpError(400, say("must_be_bool", {{"field", field_name(key)}}));
  return j[key].get<bool>();
}

std::string choice_field(const json& j, const char* key, const std::vector<std::string>& choices) {
  const std::string v = text_field(j, key);
  if (v.empty()) return choices.front();
  for (const auto& c : choices)
    if (v == c) return v;
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
  throw HttpError(400, say("must_be_one_of", {{"field", field_name(key)}, {"choices", list}}));
}

std::string name_field(const json& j, const char* key) {
  const std::string v = text_field(j, key);
  if (!v.empty() && !safe_name(v)) throw HttpError(400, say("bad_name", {{"field", field_name(key)}}));
  return v;
}

}  // namespace studio
