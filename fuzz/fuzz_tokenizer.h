// A real tiny byte-level BPE vocabulary for fuzz targets that work on token
// pieces (grammar masks, copy bias): a random-weight qwen2 model is written
// once to `path` and kept loaded with its tokenizer for the whole run.
#pragma once

#include <memory>
#include <string>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

inline const onellm::Tokenizer& fuzz_tokenizer(const std::string& path) {
  static std::unique_ptr<onellm::Model> model;
  static std::unique_ptr<onellm::Tokenizer> tok = [&] {
    onellm::TinyModelSpec spec;
    spec.arch = "qwen2";
    spec.n_embd = 32, spec.n_ff = 64, spec.n_layer = 1, spec.n_head = 2, spec.n_head_kv = 1;
    onellm::write_tiny_model(spec, path);
    model = onellm::Model::load(path);
    return onellm::Tokenizer::from_gguf(model->gguf());
  }();
  return *tok;
}
