// make-corpus: writes the device-assistant corpus (src/train/device_corpus).
#include "base/error.h"
#include "cli/commands.h"

namespace onellm::cli {

int make_corpus_command(int, char**) { throw Error("not yet"); }

}  // namespace onellm::cli
