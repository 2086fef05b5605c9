// The gallery: every picture drawn, as PNG (its settings in text chunks) beside a JSON file with
// everything needed to draw it again, and the animations in gallery/animations/ likewise. Saved
// entries are checked whenever they are read: one of the wrong type (or whose file is gone) is left
// out of listings and reported, and refused by name where it is asked for.
#pragma once
#include <bioesp.h>

#include <string>

#include "events.h"
#include "files.h"

namespace studio {

class Gallery {
 public:
  Gallery(fs::path dir, EventBus& bus);

  const fs::path& dir() const { return dir_; }
  // {"items": newest first, "skipped": [{"entry", "reason"}]}
  json pictures();
  json animations();
  // A picture's saved settings, checked (400 naming what is wrong).
  json entry(const std::string& file);
  // A picture's path, for img2img (400 when the gallery has no such picture).
  fs::path picture(const std::string& file);

  // Saves image 0 as NAME.png and `entry` (with "file" and "created") as NAME.json; publishes
  // "image" for `job` and returns the entry.
  json save_picture(const bioesp_images* images, const std::string& name, json entry, const std::string& job);
  // Saves the frames as animations/NAME (GIF, MP4 or WebM by its extension) and its entry.
  json save_animation(const bioesp_images* frames, const std::string& name, const bioesp_animation_options& options, json entry,
                      const std::string& job);

  void remove_picture(const std::string& file);
  void remove_animation(const std::string& file);

 private:
  json listed(const fs::path& folder, size_t limit, bool animations);

  fs::path dir_, animations_;
  EventBus& bus_;
};

}  // namespace studio
