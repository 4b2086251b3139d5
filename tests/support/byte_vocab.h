// A byte-level BPE vocabulary built in memory: ids 0..255 are the bytes (so a
// test's expected ids are the bytes' values), then the given extra tokens in
// order, then (with a BOS) "<s>". No merges: text encodes byte by byte.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_bytes.h"

namespace onellm::test {

struct ByteVocab {
  std::vector<uint8_t> bytes;  // the GGUF the tokenizer was read from
  std::unique_ptr<GgufFile> file;
  std::unique_ptr<Tokenizer> tok;
};

struct ByteVocabOptions {
  int32_t extra_type = 3;  // the extra tokens' token_type: 3 control, 1 normal
  bool with_bos = true;    // "<s>" last, named by tokenizer.ggml.bos_token_id
  bool add_bos = false;
  std::vector<std::pair<std::string, int32_t>> keys;  // integer metadata, e.g. tokenizer.ggml.fim_pre_token_id
};

inline std::unique_ptr<ByteVocab> byte_vocab(const std::vector<std::string>& extra, const ByteVocabOptions& o = {}) {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(byte_to_unicode(static_cast<uint8_t>(b)));
    types.push_back(1);
  }
  for (const std::string& t : extra) {
    tokens.push_back(t);
    types.push_back(o.extra_type);
  }
  if (o.with_bos) {
    tokens.push_back("<s>");
    types.push_back(3);
  }
  GgufWriter w;
  w.set("tokenizer.ggml.model", GgufValue::of_string("gpt2"));
  w.set("tokenizer.ggml.pre", GgufValue::of_string("qwen2"));
  w.set("tokenizer.ggml.tokens", GgufValue::of_strings(tokens));
  w.set("tokenizer.ggml.token_type", GgufValue::of_i32s(types));
  w.set("tokenizer.ggml.merges", GgufValue::of_strings({}));
  if (o.with_bos) w.set("tokenizer.ggml.bos_token_id", GgufValue::of_u32(static_cast<uint32_t>(tokens.size() - 1)));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::of_bool(o.add_bos));
  for (const auto& [key, id] : o.keys) w.set(key, GgufValue::of_u32(static_cast<uint32_t>(id)));
  auto v = std::make_unique<ByteVocab>();
  v->bytes = w.to_bytes();
  v->file = GgufFile::parse(v->bytes.data(), v->bytes.size(), "byte-vocab.gguf");
  v->tok = Tokenizer::from_gguf(*v->file);
  return v;
}

}  // namespace onellm::test
