// Errors that name what is wrong. Internally onellm throws onellm::Error; the
// CLI, the service and any C API catch it at their boundary, so bad input
// never aborts the process.
#pragma once

#include <stdexcept>
#include <string>

namespace onellm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace onellm
