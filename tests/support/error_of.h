// The message of the onellm::Error a call throws, or "(no error)".
#pragma once

#include <functional>
#include <string>

#include "base/error.h"

namespace onellm::test {

inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace onellm::test
