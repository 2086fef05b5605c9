// The studio's words: one table per language (strings.en.json, strings.es.json, built into the
// program) that the server's messages and the page both read. Texts name their blanks in braces:
// "{field} must be between {lo} and {hi}".
#pragma once
#include <initializer_list>
#include <string>
#include <utility>

namespace studio {

// This thread's language from now on: the request's X-Bioesp-Lang ("es"), else English.
void use_language(const std::string& code);
bool spanish();

using Blanks = std::initializer_list<std::pair<const char*, std::string>>;
// The text of `key` in this thread's language with its blanks filled; the key itself when the
// table lacks it (tests/cli_studio.sh checks that none is missing).
std::string say(const char* key, Blanks blanks = {});
// A request field as the page names it (field_<key> in the table).
std::string field_name(const std::string& key);
// A number as messages show it: 500, 0.0001, 4.29497e+09.
std::string number_text(double v);

// A language's whole table as JSON text, for the page.
const std::string& strings_json(bool spanish);

}  // namespace studio
