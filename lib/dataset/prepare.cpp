#include "dataset/prepare.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/hash.h"
#include "core/strings.h"
#include "image/resize.h"
#include "io/file.h"

namespace bioesp::dataset {

using nlohmann::json;

namespace {

// A species-like name: "Genus species" from the object name or the categories.
std::string species(const json& j) {
  std::string name = j.value("object_name", "");
  if (!name.empty()) return name;
  if (j.contains("categories") && j["categories"].is_array())
    for (const auto& c : j["categories"]) {
      if (!c.is_string()) continue;
      std::string s = c.get<std::string>();
      auto sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) continue;
      if (std::isupper(static_cast<unsigned char>(s[0])) && std::islower(static_cast<unsigned char>(s[sp + 1])) &&
          std::all_of(s.begin() + 1, s.end(), [](unsigned char ch) { return std::islower(ch) || ch == ' ' || ch == '-'; }))
        return s;
    }
  return "";
}

}  // namespace

uint64_t difference_hash(const image::Image& img) {
  auto small = image::resize(img, 9, 8);
  uint64_t h = 0;
  for (uint32_t y = 0; y < 8; ++y)
    for (uint32_t x = 0; x < 8; ++x) {
      auto grey = [&](uint32_t xx) {
        const uint8_t* p = &small.pixels[(y * 9 + xx) * small.channels];
        return 299 * p[0] + 587 * p[1] + 114 * p[2];
      };
      h = h << 1 | (grey(x) < grey(x + 1) ? 1u : 0u);
    }
  return h;
}

image::Box attention_square(const image::Image& img) {
  // Edge energy (gradient magnitude of grey) on a small copy; the square window along the long
  // side holding the most of it, so the subject rather than the middle is kept.
  const double scale = std::min(1.0, 128.0 / std::max(img.width, img.height));
  const uint32_t w = std::max<uint32_t>(2, static_cast<uint32_t>(img.width * scale));
  const uint32_t h = std::max<uint32_t>(2, static_cast<uint32_t>(img.height * scale));
  auto small = image::resize(img, w, h);
  std::vector<double> col(w, 0), row(h, 0);
  auto grey = [&](uint32_t x, uint32_t y) {
    const uint8_t* p = &small.pixels[(static_cast<size_t>(y) * w + x) * 3];
    return 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
  };
  for (uint32_t y = 0; y + 1 < h; ++y)
    for (uint32_t x = 0; x + 1 < w; ++x) {
      double e = std::fabs(grey(x + 1, y) - grey(x, y)) + std::fabs(grey(x, y + 1) - grey(x, y));
      col[x] += e, row[y] += e;
    }
  const bool wide = img.width >= img.height;
  const auto& profile = wide ? col : row;
  const size_t n = profile.size(), win = std::min(w, h);
  size_t best = (n - win) / 2;
  double sum = 0, best_sum = -1;
  for (size_t i = 0; i < n; ++i) {
    sum += profile[i];
    if (i >= win) sum -= profile[i - win];
    if (i + 1 >= win && sum > best_sum + 1e-9) best_sum = sum, best = i + 1 - win;
  }
  const double side = std::min(img.width, img.height);
  const double offset = std::min(best / scale, (wide ? img.width : img.height) - side);
  return wide ? image::Box{offset, 0, offset + side, side} : image::Box{0, offset, side, offset + side};
}

image::Image square(const image::Image& src, int size, const std::string& crop, const std::array<uint8_t, 3>& bg) {
  image::Image img = image::composite(src, bg);
  const uint32_t s = static_cast<uint32_t>(size);
  if (crop == "center") return image::resize(img, s, s, image::center_square(img));
  if (crop == "attention") return image::resize(img, s, s, attention_square(img));
  const double scale = static_cast<double>(s) / std::max(img.width, img.height);
  const uint32_t w = std::max<uint32_t>(1, static_cast<uint32_t>(std::lround(img.width * scale)));
  const uint32_t h = std::max<uint32_t>(1, static_cast<uint32_t>(std::lround(img.height * scale)));
  auto inner = image::resize(img, w, h);
  image::Image out;
  out.width = out.height = s, out.channels = 3;
  out.pixels.resize(static_cast<size_t>(s) * s * 3);
  for (size_t i = 0; i < out.pixels.size(); ++i) out.pixels[i] = bg[i % 3];
  const uint32_t x0 = (s - w) / 2, y0 = (s - h) / 2;
  for (uint32_t y = 0; y < h; ++y)
    std::copy_n(&inner.pixels[static_cast<size_t>(y) * w * 3], w * 3, &out.pixels[(static_cast<size_t>(y0 + y) * s + x0) * 3]);
  return out;
}

PrepareReport prepare(const PrepareOptions& o) {
  if (o.size < 8 || o.size % 8) fail(BIOESP_ERR_INVALID_ARGUMENT, "size must be a positive multiple of 8 (got " + std::to_string(o.size) + ")");
  if (o.crop != "center" && o.crop != "pad" && o.crop != "attention")
    fail(BIOESP_ERR_INVALID_ARGUMENT, "crop is center, attention or pad (got '" + o.crop + "')");
  if (!io::is_directory(o.in)) fail(BIOESP_ERR_NOT_FOUND, o.in + ": no such folder");
  if (o.out.empty()) fail(BIOESP_ERR_INVALID_ARGUMENT, "no output folder given");
  auto source = read_manifest(o.in);  // file → its fetched manifest line
  std::vector<std::string> names;
  for (const auto& n : io::list_directory(o.in))
    if (image::is_image_file_name(n)) names.push_back(n);
  if (names.empty()) fail(BIOESP_ERR_NOT_FOUND, o.in + ": no PNG or JPEG images in this folder");
  io::make_directories(o.out);
  PrepareReport rep;
  std::map<std::string, std::string> by_sha1;
  std::vector<std::pair<uint64_t, std::string>> hashes;
  std::vector<std::string> lines;
  std::set<std::string> taken;
  auto skip = [&](const std::string& name, const std::string& why) {
    rep.skipped.push_back({name, why});
    if (o.log) o.log(BIOESP_LOG_WARNING, "skipping " + name + ": " + why);
  };
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    if (o.progress && !o.progress(i, names.size(), name)) fail(BIOESP_ERR_CANCELLED, "prepare cancelled");
    const std::string path = o.in + "/" + name;
    std::string sum;
    image::Image img;
    try {
      sum = sha1_file(path);
      img = image::read_image(path, /*reduce=*/true);
    } catch (const Error& e) {
      skip(name, e.what());
      continue;
    }
    if (by_sha1.count(sum)) {
      skip(name, "the same file as " + by_sha1[sum]);
      continue;
    }
    by_sha1[sum] = name;
    const uint64_t h = difference_hash(image::composite(img, o.background));
    std::string near;
    for (const auto& [other, other_name] : hashes)
      if (o.near_duplicate_distance >= 0 && __builtin_popcountll(h ^ other) <= o.near_duplicate_distance) near = other_name;
    if (!near.empty()) {
      skip(name, "nearly the same picture as " + near);
      continue;
    }
    hashes.emplace_back(h, name);
    std::string stem = name.substr(0, name.rfind('.'));
    std::string file = stem + ".png";
    while (!taken.insert(file).second) file = "_" + file;
    json j = source.count(name) ? source[name] : json::object();
    std::string caption = o.caption;
    if (caption.empty()) caption = j.value("caption", "");
    if (caption.empty()) caption = stem;
    if (o.caption_from_metadata) {
      std::string sp = species(j);
      if (!sp.empty() && caption.find(sp) == std::string::npos) caption += ", " + sp;
    }
    image::write_png(o.out + "/" + file, square(img, o.size, o.crop, o.background));
    io::write_text_file(o.out + "/" + file.substr(0, file.size() - 4) + ".txt", caption);
    j["source_file"] = name;
    j["source_sha1"] = sum;
    j["source_width"] = img.width;
    j["source_height"] = img.height;
    j["file"] = file;
    j["caption"] = caption;
    j["prepared_size"] = o.size;
    j["crop"] = o.crop;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    j["dhash"] = hex;
    lines.push_back(j.dump());
    ++rep.prepared;
  }
  if (o.progress) o.progress(names.size(), names.size(), "");
  write_manifest(o.out, lines);
  write_attribution(o.out, lines);
  if (rep.prepared == 0) fail(BIOESP_ERR_FORMAT, o.in + ": none of its images could be prepared");
  return rep;
}

}  // namespace bioesp::dataset
