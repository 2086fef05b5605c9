// C entry points that build architectures (LibTorch).
#include <memory>

#include "api/guard.h"
#include "api/weights_handle.h"
#include "hub/pull.h"
#include "models/architecture.h"

using namespace bioesp;

extern "C" {

bioesp_status bioesp_weights_open_expected(const char* path, const bioesp_weights_options* options,
                                           bioesp_weights** out) {
  return guard([&] {
    require(path && out, "path and out must not be NULL");
    *out = nullptr;
    auto w = std::make_unique<bioesp_weights>();
    w->set = models::expected_weights(hub::resolve_model(path, nullptr), open_options(options));
    for (auto& t : w->set.tensors) t.nbytes = static_cast<size_t>(t.numel()) * 4;
    *out = w.release();
  });
}

}  // extern "C"
