// What a request (or a file the studio wrote earlier) may say: the studio's own JSON fields (the
// library's options go through options.h, which reads them with these), each read with its type
// and range, and the error it gets, naming the field, when it says something else. No JSON
// value reaches the studio's work unchecked, so a wrong type is a 400, never an exception.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace studio {

using nlohmann::json;

// A request that cannot be served as asked: an HTTP status and a message for the page.
struct HttpError : std::runtime_error {
  int status;
  HttpError(int s, const std::string& m) : std::runtime_error(m), status(s) {}
};

// The body as a JSON object, else 400.
json body_of(const std::string& body);

// Each reads j[key]; absent or null gives the fallback. Strings holding a number count as one
// (the page's forms send text).
std::string text_field(const json& j, const char* key);
double number_field(const json& j, const char* key, double fallback, double lo, double hi);
int int_field(const json& j, const char* key, int fallback, int lo, int hi);
bool bool_field(const json& j, const char* key, bool fallback);
// One of `choices`; the first when absent or empty.
std::string choice_field(const json& j, const char* key, const std::vector<std::string>& choices);
// A name for a folder (safe_name), or "" when absent.
std::string name_field(const json& j, const char* key);

}  // namespace studio
