#include "train/dataset.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/strings.h"
#include "image/resize.h"
#include "io/file.h"

namespace bioesp::train {

namespace {

std::string stem(const std::string& n) { return n.substr(0, n.rfind('.')); }

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// Each picture's caption: its manifest.jsonl entry, else <name>.txt, else the prompt.
class Captions {
 public:
  Captions(const std::string& dir, const DatasetOptions& o) : dir_(dir), o_(o) {
    if (!io::is_directory(dir)) fail(BIOESP_ERR_NOT_FOUND, dir + ": no such folder");
    if (!o.use_captions || !io::is_file(dir + "/manifest.jsonl")) return;
    std::istringstream in(io::read_text_file(dir + "/manifest.jsonl"));
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (trim(line).empty()) continue;
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("file") || !j["file"].is_string())
        fail(BIOESP_ERR_FORMAT, dir + "/manifest.jsonl:" + std::to_string(n) + ": not a manifest line (a JSON object with \"file\")");
      if (j.contains("caption") && j["caption"].is_string()) manifest_[j["file"].get<std::string>()] = j["caption"];
    }
  }

  std::string of(const std::string& name) const {
    std::string caption = o_.prompt;
    if (o_.use_captions) {
      auto m = manifest_.find(name);
      if (m != manifest_.end()) caption = m->second;
      else if (io::is_file(dir_ + "/" + stem(name) + ".txt")) caption = trim(io::read_text_file(dir_ + "/" + stem(name) + ".txt"));
    }
    if (caption.empty()) fail(BIOESP_ERR_INVALID_ARGUMENT, dir_ + "/" + name + " has no caption and no prompt was given");
    return caption;
  }

 private:
  std::string dir_;
  const DatasetOptions& o_;
  std::map<std::string, std::string> manifest_;  // file name → caption
};

}  // namespace

std::vector<std::string> captions(const std::string& dir, const DatasetOptions& o) {
  Captions c(dir, o);
  std::vector<std::string> out;
  for (const auto& name : io::list_directory(dir))
    if (image::is_image_file_name(name)) out.push_back(c.of(name));
  if (out.empty()) fail(BIOESP_ERR_NOT_FOUND, dir + ": no PNG or JPEG images in this folder");
  return out;
}

std::vector<Example> load_examples(const std::string& dir, const DatasetOptions& o, const io::Logger& log) {
  const Captions captions(dir, o);
  std::vector<Example> out;
  std::vector<std::string> skipped;
  for (const auto& name : io::list_directory(dir)) {
    if (!image::is_image_file_name(name)) continue;
    Example e;
    e.path = dir + "/" + name;
    try {
      // Transparent emoji and cut-outs train as objects on white.
      auto img = image::composite(image::read_image(e.path), {255, 255, 255});
      if (img.width < 8 || img.height < 8) fail(BIOESP_ERR_FORMAT, "smaller than 8×8 pixels");
      e.image = image::resize_short_side(img, static_cast<uint32_t>(o.resolution));
      e.original_width = img.width, e.original_height = img.height;
    } catch (const Error& err) {
      if (log) log(BIOESP_LOG_WARNING, "skipping " + e.path + ": " + err.what());
      skipped.push_back(name);
      continue;
    }
    e.caption = captions.of(name);
    out.push_back(std::move(e));
  }
  if (out.empty())
    fail(skipped.empty() ? BIOESP_ERR_NOT_FOUND : BIOESP_ERR_FORMAT,
         dir + (skipped.empty() ? ": no PNG or JPEG images in this folder"
                                : ": none of its " + std::to_string(skipped.size()) + " images could be read"));
  return out;
}

torch::Tensor pixels(const Example& e, int resolution, bool random_crop, bool flip, at::Generator& gen, Crop* crop) {
  const auto& img = e.image;
  const uint32_t r = static_cast<uint32_t>(resolution);
  int64_t x = (img.width - r) / 2, y = (img.height - r) / 2;
  if (random_crop) {
    x = at::randint(img.width - r + 1, {1}, gen, torch::kLong).item<int64_t>();
    y = at::randint(img.height - r + 1, {1}, gen, torch::kLong).item<int64_t>();
  }
  auto t = torch::from_blob(const_cast<uint8_t*>(img.pixels.data()), {img.height, img.width, 3}, torch::kUInt8)
               .slice(0, y, y + r)
               .slice(1, x, x + r)
               .permute({2, 0, 1})
               .to(torch::kFloat32)
               .div(127.5)
               .sub(1.0);
  const bool mirrored = flip && at::rand({1}, gen).item<double>() < 0.5;
  if (mirrored) t = t.flip({2});
  if (crop) *crop = {y, mirrored ? static_cast<int64_t>(img.width - r) - x : x};
  return t.contiguous();
}

std::string dataset_fingerprint(const std::string& dir) {
  uint64_t h;
  if (io::is_file(dir + "/manifest.jsonl")) {
    h = fnv1a(io::read_text_file(dir + "/manifest.jsonl"));
  } else {
    h = kFnv1aSeed;
    for (const auto& n : io::list_directory(dir))
      if (image::is_image_file_name(n)) h = fnv1a(n + "\n", h);
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "fnv1a64:%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace bioesp::train
