#include "drawings.h"

#include <bioesp.h>

#include <cstdint>
#include <cstdio>

#include "request.h"
#include "rules.h"
#include "strings.h"
#include "studio.h"

namespace studio {
namespace {

const std::string kDataUrl = "data:image/png;base64,";
const std::string kSignature("\x89PNG\r\n\x1a\n", 8);

// RFC 4648 base64 with its padding; anything else (another alphabet, a stray character, a
// length that is not a multiple of 4) is refused.
std::string base64(const std::string& in, size_t from, const std::string& field) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto bad = [&] { return HttpError(400, say("drawing_not_base64", {{"field", field}})); };
  if (in.size() == from || (in.size() - from) % 4) throw bad();
  std::string out;
  out.reserve((in.size() - from) / 4 * 3);
  uint32_t bits = 0;
  int held = 0;
  for (size_t i = from; i < in.size(); ++i) {
    if (in[i] == '=') {
      if (in.size() - i > 2 || (i + 1 < in.size() && in[i + 1] != '=')) throw bad();  // padding ends it
      continue;
    }
    const size_t v = alphabet.find(in[i]);
    if (v == std::string::npos) throw bad();
    bits = bits << 6 | static_cast<uint32_t>(v);
    held += 6;
    if (held >= 8) out.push_back(static_cast<char>(bits >> (held -= 8) & 0xFF));
  }
  return out;
}

uint32_t big_endian(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<unsigned char>(s[at + i]);
  return v;
}

// A PNG's signature and size, from its header chunk, before the library decodes a byte of it (a
// small file may claim a huge picture).
void check_png(const std::string& png, const std::string& field) {
  if (png.size() < 33 || png.compare(0, 8, kSignature) != 0 || png.compare(12, 4, "IHDR") != 0)
    throw HttpError(400, say("drawing_not_png", {{"field", field}}));
  const uint32_t w = big_endian(png, 16), h = big_endian(png, 20);
  if (w == 0 || h == 0 || w > rules::max_size || h > rules::max_size)
    throw HttpError(400, say("drawing_too_large", {{"field", field}, {"width", std::to_string(w)}, {"height", std::to_string(h)},
                                                   {"max", std::to_string(rules::max_size)}}));
}

// 64-bit FNV-1a: the drawing's name, so that the same bytes are kept once.
std::string name_of(const std::string& png) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : png) h = (h ^ c) * 1099511628211ull;
  char name[32];
  std::snprintf(name, sizeof name, "d%016llx.png", static_cast<unsigned long long>(h));
  return name;
}

}  // namespace

Drawings::Drawings(fs::path dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }

std::string Drawings::take(const json& request, const char* key) {
  if (!request.contains(key) || request[key].is_null()) return "";
  const std::string field = field_name(key);
  if (!request[key].is_string()) throw HttpError(400, say("must_be_text", {{"field", field}}));
  const std::string& v = request[key].get_ref<const std::string&>();
  if (v.empty()) return "";
  if (v.rfind(kDataUrl, 0) == 0) {
    const std::string png = base64(v, kDataUrl.size(), field);
    check_png(png, field);
    return save(png);
  }
  std::error_code ec;
  const fs::path kept = fs::path(v).extension() == ".png" ? confined(dir_, v) : fs::path();
  if (kept.empty() || !fs::is_regular_file(kept, ec)) throw HttpError(400, say("no_such_drawing", {{"field", field}}));
  return v;
}

std::string Drawings::save(const std::string& png) {
  const std::string name = name_of(png);
  const fs::path file = dir_ / name;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) write_atomically(file, png);
  bioesp_images* read = nullptr;
  if (bioesp_images_load(file.c_str(), &read) != BIOESP_OK) {
    const std::string why = bioesp_last_error();
    fs::remove(file, ec);
    throw HttpError(400, say("drawing_unreadable", {{"why", why}}));
  }
  bioesp_images_free(read);
  return name;
}

}  // namespace studio
