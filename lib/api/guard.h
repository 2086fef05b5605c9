// Every C entry point runs its body through guard(): no exception crosses the ABI.
#pragma once

#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "core/error.h"
#include "io/weights.h"

namespace bioesp {

template <class F>
bioesp_status guard(F&& body) noexcept {
  try {
    clear_last_error();
    body();
    return BIOESP_OK;
  } catch (const Error& e) {
    set_last_error(e.what());
    return e.status();
  } catch (const std::bad_alloc&) {
    set_last_error("out of memory");
    return BIOESP_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_last_error(std::string("internal error: ") + e.what());
    return BIOESP_ERR_INTERNAL;
  } catch (...) {
    set_last_error("internal error: unknown exception");
    return BIOESP_ERR_INTERNAL;
  }
}

inline void require(bool ok, const char* what) {
  if (!ok) fail(BIOESP_ERR_INVALID_ARGUMENT, what);
}

// A string the caller frees with bioesp_string_free().
inline char* dup_string(const std::string& s) {
  char* out = new char[s.size() + 1];
  std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

// Options structs: copy what the caller's (possibly older, smaller) struct holds over defaults.
template <class T>
T read_options(const T* given, void (*init)(T*)) {
  T out;
  init(&out);
  if (given) {
    size_t n = given->struct_size < sizeof(T) ? given->struct_size : sizeof(T);
    if (n < sizeof(size_t)) fail(BIOESP_ERR_INVALID_ARGUMENT, "options.struct_size is too small");
    std::memcpy(&out, given, n);
    out.struct_size = sizeof(T);
  }
  return out;
}

// Structs the library fills: the caller's may be older and shorter (its struct_size says how
// long), so only the fields that fit are written, and its struct_size is kept.
template <class T>
void write_output(T* out, T full) {
  if (!out) fail(BIOESP_ERR_INVALID_ARGUMENT, "out must not be NULL");
  const size_t n = out->struct_size;
  if (n < sizeof(size_t)) fail(BIOESP_ERR_INVALID_ARGUMENT, "out->struct_size is not set (the size of the struct compiled against)");
  full.struct_size = n;
  std::memcpy(out, &full, n < sizeof(T) ? n : sizeof(T));
}

// Calls a C progress callback, if there is one; false when it asks to cancel.
inline bool call_progress(bioesp_progress_fn fn, void* user, const char* stage, uint64_t current, uint64_t total,
                          const char* item = nullptr, uint64_t bytes = 0) {
  if (!fn) return true;
  bioesp_progress p{sizeof(bioesp_progress), stage, current, total, item, bytes};
  return fn(user, &p) == 0;
}

// A C log callback as the core's logger (empty when the caller gave none).
inline io::Logger c_logger(bioesp_log_fn fn, void* user) {
  if (!fn) return nullptr;
  return [fn, user](bioesp_log_level l, const std::string& m) { fn(user, l, m.c_str()); };
}

}  // namespace bioesp
