// Where the model that ships with bioesp is: beside the installed library, else (in a build
// tree) in the source checkout.
#include <dlfcn.h>

#include <string>

#include "api/guard.h"
#include "io/file.h"

extern "C" const char* bioesp_embedded_model(void) {
  static const std::string found = [] {
    std::string candidates[2];
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&bioesp_embedded_model), &info) && info.dli_fname) {
      std::string lib = info.dli_fname;
      candidates[0] = lib.substr(0, lib.find_last_of('/') + 1) + BIOESP_MODEL_FROM_LIBDIR;
    }
    candidates[1] = BIOESP_MODEL_IN_SOURCE;
    for (const auto& c : candidates)
      if (!c.empty() && bioesp::io::is_file(c + "/model_index.json")) return c;
    return std::string();
  }();
  return found.empty() ? nullptr : found.c_str();
}
