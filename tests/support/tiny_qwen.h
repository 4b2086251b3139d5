// A tiny random-weight qwen2 model and its tokenizer (a real byte-level BPE
// vocabulary), for tests of what works on token pieces: grammars, tool calls.
#pragma once

#include <memory>

#include "engine/engine.h"
#include "support/test_paths.h"

namespace onellm::test {

struct TinyQwen {
  TinyQwen() {
    TinyModelSpec spec;
    spec.arch = "qwen2";
    spec.n_embd = 64, spec.n_ff = 128, spec.n_layer = 1;
    write_tiny_model(spec, dir.file("m.gguf"));
    model = Model::load(dir.file("m.gguf"));
    tokenizer = Tokenizer::from_gguf(model->gguf());
  }
  TempDir dir;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
};

}  // namespace onellm::test
