// The options table (options.cpp) as the entry points use it: every field of an options struct
// checked against its row's range and choices, so the limits are written once.
#pragma once

#include "api/guard.h"

namespace bioesp {

// Fails with BIOESP_ERR_INVALID_ARGUMENT naming the first field of `options` (a struct of `kind`)
// outside its range or choices, or a list whose pointer or items are NULL.
void check_options(bioesp_options_kind kind, const void* options);

// read_options, then check_options.
template <class T>
T read_checked(bioesp_options_kind kind, const T* given, void (*init)(T*)) {
  T o = read_options(given, init);
  check_options(kind, &o);
  return o;
}

}  // namespace bioesp
