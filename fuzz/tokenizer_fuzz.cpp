// Tokenizes arbitrary bytes with a small SentencePiece and a small byte-level
// BPE vocabulary (the first byte picks the vocabulary and pre-tokenizer),
// then decodes: no input may crash or hang, byte-level BPE must give back the
// text (as llama.cpp reads invalid UTF-8), and streaming must stay valid UTF-8.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_bytes.h"

namespace {

using namespace onellm;

std::unique_ptr<Tokenizer> make(std::vector<uint8_t>& storage, std::unique_ptr<GgufFile>& file, bool bpe,
                                const char* pre) {
  GgufWriter w;
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::vector<float> scores;
  if (bpe) {
    for (int b = 0; b < 256; ++b) {
      tokens.push_back(byte_to_unicode(static_cast<uint8_t>(b)));
      types.push_back(1);
    }
    const std::string sp = byte_to_unicode(' ');
    for (const char* t : {"th", "the", "he", "in"}) {
      tokens.push_back(t);
      types.push_back(1);
    }
    tokens.push_back(sp + "t");
    types.push_back(1);
    tokens.push_back("<|endoftext|>");
    types.push_back(3);
    w.set("tokenizer.ggml.model", GgufValue::of_string("gpt2"));
    w.set("tokenizer.ggml.pre", GgufValue::of_string(pre));
    w.set("tokenizer.ggml.merges", GgufValue::of_strings({"t h", "th e", "h e", "i n", sp + " t"}));
  } else {
    for (const char* t : {"<unk>", "<s>", "</s>"}) tokens.push_back(t);
    types = {2, 3, 3};
    static const char* hex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      tokens.push_back(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">");
      types.push_back(6);
    }
    for (const char* t : {"\xE2\x96\x81", "\xE2\x96\x81t", "he", "\xE2\x96\x81the", "a", "b"}) {
      tokens.push_back(t);
      types.push_back(1);
    }
    w.set("tokenizer.ggml.model", GgufValue::of_string("llama"));
    for (size_t i = 0; i < tokens.size(); ++i) scores.push_back(-static_cast<float>(i));
    w.set("tokenizer.ggml.scores", GgufValue::of_f32s(scores));
  }
  w.set("tokenizer.ggml.tokens", GgufValue::of_strings(tokens));
  w.set("tokenizer.ggml.token_type", GgufValue::of_i32s(types));
  storage = w.to_bytes();
  file = GgufFile::parse(storage.data(), storage.size(), "fuzz-vocab.gguf");
  return Tokenizer::from_gguf(*file);
}

struct Vocab {
  std::vector<uint8_t> bytes;
  std::unique_ptr<GgufFile> file;
  std::unique_ptr<Tokenizer> tok;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Vocab vocabs[5];
  static const char* const kPre[] = {"", "gpt-2", "llama-bpe", "qwen2", "deepseek-coder"};
  static bool ready = [] {
    for (int i = 0; i < 5; ++i) vocabs[i].tok = make(vocabs[i].bytes, vocabs[i].file, i != 0, kPre[i]);
    return true;
  }();
  (void)ready;
  if (size == 0) return 0;
  Vocab& v = vocabs[data[0] % 5];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    std::vector<int32_t> ids = v.tok->encode(text, (data[0] & 8) != 0, (data[0] & 16) != 0);
    std::string back = v.tok->decode(ids, false, true);
    StreamingDecoder stream(*v.tok);
    for (int32_t id : ids) {
      const std::string piece = stream.push(id);
      if (sanitize_utf8_like_llama(piece) != piece) std::abort();  // only well-formed text comes out
    }
    (void)stream.flush();
    // Byte-level BPE without special parsing loses nothing.
    if (v.tok->is_bpe() && (data[0] & 16) == 0 && std::string(kPre[data[0] % 5]) == "qwen2" &&
        back != sanitize_utf8_like_llama(text))
      std::abort();
  } catch (const onellm::Error&) {
  }
  return 0;
}
