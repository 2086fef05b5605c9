// Any bytes as a MediaWiki API answer: parsed into files and a continuation, or refused with an
// Error; every text field then goes through the license policy.
#include <string>

#include "core/error.h"
#include "dataset/commons.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  bioesp::dataset::html_to_text(text);
  try {
    auto page = bioesp::dataset::parse_api_response(text);
    for (const auto& f : page.files) bioesp::dataset::license_rejection(f, {});
  } catch (const bioesp::Error&) {
  }
  return 0;
}
