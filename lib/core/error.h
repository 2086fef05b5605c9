// Errors inside the core: thrown as bioesp::Error with a status, turned into a status and a
// thread-local message at the C boundary (api/guard.h).
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

#include "bioesp.h"

namespace bioesp {

class Error : public std::runtime_error {
 public:
  Error(bioesp_status status, std::string message)
      : std::runtime_error(std::move(message)), status_(status) {}
  bioesp_status status() const { return status_; }

 private:
  bioesp_status status_;
};

[[noreturn]] inline void fail(bioesp_status status, const std::string& message) {
  throw Error(status, message);
}

// Sets the calling thread's message for bioesp_last_error().
void set_last_error(const std::string& message);
void clear_last_error();

}  // namespace bioesp
