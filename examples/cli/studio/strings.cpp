#include "strings.h"

#include <map>
#include <sstream>

#include "files.h"

extern "C" const unsigned char bioesp_studio_strings_en_json[], bioesp_studio_strings_es_json[];
extern "C" const size_t bioesp_studio_strings_en_json_size, bioesp_studio_strings_es_json_size;

namespace studio {
namespace {

thread_local bool t_spanish = false;

struct Table {
  std::string text;
  std::map<std::string, std::string> words;
};

Table load(const unsigned char* data, size_t size) {
  Table t{std::string(reinterpret_cast<const char*>(data), size), {}};
  const json words = parse_json(t.text);  // built in: it is JSON
  for (const auto& [key, value] : words.items()) t.words[key] = value.get<std::string>();
  return t;
}

// Parsed once, before any thread asks (C++ guarantees a function-local static's safe start).
const Table& table(bool es) {
  static const Table en = load(bioesp_studio_strings_en_json, bioesp_studio_strings_en_json_size);
  static const Table sp = load(bioesp_studio_strings_es_json, bioesp_studio_strings_es_json_size);
  return es ? sp : en;
}

}  // namespace

void use_language(const std::string& code) { t_spanish = code == "es"; }
bool spanish() { return t_spanish; }

std::string say(const char* key, Blanks blanks) {
  const auto& words = table(t_spanish).words;
  auto it = words.find(key);
  std::string text = it == words.end() ? key : it->second;
  for (const auto& [name, value] : blanks) {
    const std::string blank = std::string("{") + name + "}";
    for (size_t at = text.find(blank); at != std::string::npos; at = text.find(blank, at + value.size()))
      text.replace(at, blank.size(), value);
  }
  return text;
}

std::string field_name(const std::string& key) {
  const auto& words = table(t_spanish).words;
  auto it = words.find("field_" + key);
  return it == words.end() ? key : it->second;
}

std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

const std::string& strings_json(bool es) { return table(es).text; }

}  // namespace studio
