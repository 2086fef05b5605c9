// The page's drawings (its canvas: a ControlNet's scribble, or the mask of a picture to paint
// again), kept in the gallery's drawings/ folder under a name made from their bytes: a picture's
// entry names the drawing it was made with, and drawing it again finds the same file. A request's
// drawing is a PNG data URL, checked whole before anything is queued — base64, a PNG signature,
// at most rules::max_size pixels a side, then read by the library as a job would read it — or the
// name of a drawing kept before. Anything else is a 400 saying what is wrong.
#pragma once
#include <string>

#include "files.h"

namespace studio {

class Drawings {
 public:
  explicit Drawings(fs::path dir);
  // request[key]: "" when absent, null or empty; else the kept drawing's name (a data URL is
  // saved first, unless the same bytes were).
  std::string take(const json& request, const char* key);
  fs::path path(const std::string& name) const { return dir_ / name; }

 private:
  std::string save(const std::string& png);
  fs::path dir_;
};

}  // namespace studio
