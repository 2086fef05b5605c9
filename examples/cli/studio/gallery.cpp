#include "gallery.h"

#include <algorithm>
#include <initializer_list>
#include <memory>

#include "request.h"
#include "rules.h"
#include "strings.h"
#include "studio.h"

namespace studio {
namespace {

enum class Kind { text, number, count, texts, counts };
struct Field {
  const char* key;
  Kind kind;
  bool required;
};

const std::initializer_list<Field> kShared = {
    {"negative_prompt", Kind::text, false}, {"steps", Kind::count, false}, {"guidance", Kind::number, false},
    {"width", Kind::count, false}, {"height", Kind::count, false}, {"scheduler", Kind::text, false},
    {"lora", Kind::text, false}, {"lora_scale", Kind::number, false}, {"model", Kind::text, false},
    {"created", Kind::number, false}};
const std::initializer_list<Field> kPicture = {
    {"file", Kind::text, true}, {"prompt", Kind::text, true}, {"seed", Kind::count, true},
    {"init", Kind::text, false}, {"strength", Kind::number, false}, {"drawing", Kind::text, false},
    {"drawing_use", Kind::text, false}, {"controlnet", Kind::text, false}, {"control_scale", Kind::number, false},
    {"control_start", Kind::number, false}, {"control_end", Kind::number, false}};
const std::initializer_list<Field> kAnimation = {
    {"file", Kind::text, true}, {"prompts", Kind::texts, true}, {"seeds", Kind::counts, true},
    {"frames", Kind::count, true}, {"fps", Kind::number, false}, {"format", Kind::text, false}};

bool fits(const json& v, Kind kind) {
  switch (kind) {
    case Kind::text: return v.is_string();
    case Kind::number: return v.is_number();
    case Kind::count: return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
    case Kind::texts: return v.is_array() && std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_string(); });
    case Kind::counts: return v.is_array() && std::all_of(v.begin(), v.end(), [](const json& e) { return fits(e, Kind::count); });
  }
  return false;
}

const char* wrong_kind(Kind kind) {
  switch (kind) {
    case Kind::text: return "must_be_text";
    case Kind::texts: return "must_be_texts";
    case Kind::counts: return "must_be_numbers";
    default: return "must_be_number";
  }
}

// What is wrong with a saved entry ("" when nothing): every field of the wrong type, and a file
// that is not a picture (or animation) of this gallery.
std::string problems(const json& e, const fs::path& gallery, bool animation) {
  if (!e.is_object()) return say("not_json_object");
  std::string out;
  const auto add = [&](const std::string& p) { out += (out.empty() ? "" : "; ") + p; };
  for (const auto* fields : {&kShared, animation ? &kAnimation : &kPicture})
    for (const Field& f : *fields)
      if ((f.required || e.contains(f.key)) && !(e.contains(f.key) && fits(e[f.key], f.kind)))
        add(say(wrong_kind(f.kind), {{"field", field_name(f.key)}}));
  if (e.contains("file") && e["file"].is_string()) {
    const std::string file = e["file"];
    const fs::path p = confined(gallery, file);
    const bool animation_file = file.rfind("animations/", 0) == 0 && media_type(p) && !is_picture(p);
    std::error_code ec;
    if (p.empty() || (animation ? !animation_file : !is_picture(p)) || !fs::is_regular_file(p, ec))
      add(say("picture_missing", {{"file", file}}));
  }
  return out;
}

}  // namespace

Gallery::Gallery(fs::path dir, EventBus& bus) : dir_(std::move(dir)), animations_(dir_ / "animations"), bus_(bus) {
  fs::create_directories(animations_);
}

json Gallery::listed(const fs::path& folder, size_t limit, bool animations) {
  json skipped = json::array(), items = json::array();
  auto files = listing(folder, false, skipped);
  std::reverse(files.begin(), files.end());  // names start with the time they were made: newest first
  for (const auto& f : files) {
    if (items.size() >= limit) break;
    if (f.extension() != ".json") continue;
    json e = read_json(f);
    const std::string why = problems(e, dir_, animations);
    if (why.empty()) items.push_back(std::move(e));
    else skip(skipped, f.filename().string(), why);
  }
  return json{{"items", items}, {"skipped", skipped}};
}

json Gallery::pictures() { return listed(dir_, rules::gallery_listed, false); }
json Gallery::animations() { return listed(animations_, rules::animations_listed, true); }

fs::path Gallery::picture(const std::string& file) {
  const fs::path p = confined(dir_, file);
  std::error_code ec;
  if (p.empty() || !is_picture(p) || !fs::is_regular_file(p, ec)) throw HttpError(400, say("not_in_gallery", {{"name", file}}));
  return p;
}

json Gallery::entry(const std::string& file) {
  fs::path meta = picture(file);
  meta.replace_extension(".json");
  json e = read_json(meta);
  if (e.is_discarded()) throw HttpError(400, say("no_saved_settings", {{"name", file}}));
  const std::string why = problems(e, dir_, false);
  if (!why.empty()) throw HttpError(400, say("damaged_settings", {{"name", file}, {"why", why}}));
  return e;
}

json Gallery::save_picture(const bioesp_images* images, const std::string& name, json entry, const std::string& job) {
  if (bioesp_images_save(images, 0, (dir_ / (name + ".png")).c_str(), nullptr) != BIOESP_OK) throw std::runtime_error(last_error("saving"));
  entry["file"] = name + ".png";
  entry["created"] = now_ms();
  write_atomically(dir_ / (name + ".json"), json_text(entry, 2) + "\n");
  bus_.publish("image", json{{"job", job}, {"entry", entry}});
  return entry;
}

json Gallery::save_animation(const bioesp_images* frames, const std::string& name, const bioesp_animation_options& options,
                             json entry, const std::string& job) {
  if (bioesp_images_save_animation(frames, (animations_ / name).c_str(), &options) != BIOESP_OK)
    throw std::runtime_error(last_error("saving the animation"));
  entry["file"] = "animations/" + name;
  entry["created"] = now_ms();
  write_atomically(animations_ / (name + ".json"), json_text(entry, 2) + "\n");
  bus_.publish("animation", json{{"job", job}, {"entry", entry}});
  return entry;
}

void Gallery::remove_picture(const std::string& file) {
  if (!safe_name(file) || fs::path(file).extension() != ".png") throw HttpError(400, say("not_gallery_picture"));
  const fs::path png = confined(dir_, file);
  if (png.empty() || !fs::exists(png)) throw HttpError(404, say("no_such_picture"));
  fs::path meta = png;
  meta.replace_extension(".json");
  fs::remove(meta);
  fs::remove(png);
  bus_.publish("removed", json{{"file", file}});
}

void Gallery::remove_animation(const std::string& file) {
  const fs::path p = confined(animations_, file);
  std::error_code ec;
  if (p.empty() || !media_type(p) || is_picture(p) || !fs::is_regular_file(p, ec)) throw HttpError(404, say("no_such_animation"));
  fs::path meta = p;
  meta += ".json";
  fs::remove(meta);
  fs::remove(p);
  bus_.publish("removed", json{{"file", "animations/" + file}});
}

}  // namespace studio
