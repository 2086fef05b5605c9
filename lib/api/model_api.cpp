// C entry points that build architectures and schedulers (LibTorch).
#include <memory>

#include "api/guard.h"
#include "api/weights_handle.h"
#include "hub/pull.h"
#include "models/architecture.h"
#include "pipeline/pipeline.h"
#include "sched/scheduler.h"

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

bioesp_status bioesp_scheduler_describe(const char* path, const char* name, int steps, char** json) {
  return guard([&] {
    require(json, "json must not be NULL");
    *json = nullptr;
    const char* model = path ? path : bioesp_embedded_model();
    if (!model) fail(BIOESP_ERR_NOT_FOUND, "no path given and the embedded model is not installed");
    const std::string config = pipeline::read_scheduler_config(hub::resolve_model(model, nullptr));
    *json = dup_string(sched::describe(config, name ? name : "", steps));
  });
}

}  // extern "C"
