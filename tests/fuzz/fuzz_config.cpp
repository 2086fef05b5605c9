// Any bytes as a component config.json: parsed with defaults, or refused with an Error.
#include <string>

#include "config/model_config.h"
#include "core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try { bioesp::config::parse_unet(text, "fuzz"); } catch (const bioesp::Error&) {}
  try { bioesp::config::parse_vae(text, "fuzz"); } catch (const bioesp::Error&) {}
  try { bioesp::config::parse_clip_text(text, "fuzz"); } catch (const bioesp::Error&) {}
  return 0;
}
