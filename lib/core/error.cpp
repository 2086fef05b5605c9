#include "core/error.h"

#include <cstdio>

namespace bioesp {
namespace {
thread_local std::string last_error;
}

void set_last_error(const std::string& message) { last_error = message; }
void clear_last_error() { last_error.clear(); }

}  // namespace bioesp

extern "C" {

const char* bioesp_last_error(void) { return bioesp::last_error.c_str(); }

const char* bioesp_status_string(bioesp_status status) {
  switch (status) {
    case BIOESP_OK: return "ok";
    case BIOESP_ERR_INVALID_ARGUMENT: return "invalid argument";
    case BIOESP_ERR_IO: return "input/output error";
    case BIOESP_ERR_FORMAT: return "format error";
    case BIOESP_ERR_NETWORK: return "network error";
    case BIOESP_ERR_CANCELLED: return "cancelled";
    case BIOESP_ERR_OUT_OF_MEMORY: return "out of memory";
    case BIOESP_ERR_UNSUPPORTED: return "unsupported";
    case BIOESP_ERR_NOT_FOUND: return "not found";
    case BIOESP_ERR_MISMATCH: return "mismatch";
    case BIOESP_ERR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

unsigned bioesp_version(void) { return BIOESP_VERSION_NUMBER; }

const char* bioesp_version_string(void) {
#define BIOESP_STR2(x) #x
#define BIOESP_STR(x) BIOESP_STR2(x)
  return BIOESP_STR(BIOESP_VERSION_MAJOR) "." BIOESP_STR(BIOESP_VERSION_MINOR) "." BIOESP_STR(
      BIOESP_VERSION_PATCH);
}

bioesp_status bioesp_check_version(unsigned header_version) {
  unsigned major = header_version / 10000, minor = header_version / 100 % 100;
  if (major != BIOESP_VERSION_MAJOR || minor > BIOESP_VERSION_MINOR) {
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "bioesp header %u.%u.x does not match the loaded library %s",
                  major, minor, bioesp_version_string());
    bioesp::set_last_error(buf);
    return BIOESP_ERR_UNSUPPORTED;
  }
  bioesp::clear_last_error();
  return BIOESP_OK;
}

void bioesp_string_free(char* s) { delete[] s; }

}  // extern "C"
