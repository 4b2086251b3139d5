// Feeds arbitrary bytes to the GGUF reader and, when they parse, to model
// config reading and loading: every input must end in success or onellm::Error.
#include <cstddef>
#include <cstdint>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto file = onellm::GgufFile::parse(data, size, "fuzz.gguf");
    for (const auto& t : file->tensors()) (void)t.n_elements();
    try {
      (void)onellm::read_model_config(*file);
      auto model = onellm::Model::from_gguf(std::move(file));
      (void)model->parameter_count();
    } catch (const onellm::Error&) {
    }
  } catch (const onellm::Error&) {
  }
  return 0;
}
