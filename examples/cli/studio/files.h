// Files and names: which names a client may use, paths confined to the studio's folders, the
// media the studio serves, listings that skip (and report) what they cannot show, atomic writes.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace studio {

namespace fs = std::filesystem;
using nlohmann::json;

bool valid_utf8(const std::string& s);

// One path component a client may name: 1 to 255 bytes of UTF-8, no separators or control
// characters, not "." or "..", not hidden.
bool safe_name(const std::string& s);

// root/rel when every component of rel is a safe name and the real path (links followed) stays
// under root; otherwise empty.
fs::path confined(const fs::path& root, const std::string& rel);

// The only files the studio serves: pictures and animations, by their extension; else nullptr.
const char* media_type(const fs::path& p);
bool is_picture(const fs::path& p);

// The entries of dir (its folders, or its regular files) a page may name, sorted. Hidden ones are
// left out silently; a name that is not UTF-8 is added to `skipped` ({"entry", "reason"}).
std::vector<fs::path> listing(const fs::path& dir, bool folders, json& skipped);
void skip(json& skipped, const std::string& entry, const std::string& reason);

// Writes through a unique temporary file beside path, flushed to disk and renamed, so that neither
// a reader nor a crash ever finds half a file.
void write_atomically(const fs::path& path, const std::string& text);
// The file's bytes; "" when it cannot be read.
std::string read_file(const fs::path& path);

// JSON text that never throws: bytes that are not UTF-8 (a file name, a caption) become U+FFFD.
std::string json_text(const json& j, int indent = -1);
// JSON from text, or from a file; discarded (is_discarded()) when it is not JSON. The only parser
// instance of the studio (nlohmann's parser costs seconds to compile in every file that uses it).
json parse_json(const std::string& text);
json read_json(const fs::path& path);

}  // namespace studio
