// Random-weight models of real architectures, written with our own GGUF
// writer: the "tiny-random" models tests run against, and full-size shapes
// for benchmarks. The tokenizer is small but real (SentencePiece for llama,
// byte-level BPE for qwen), so every code path from text to logits runs.
#include <cmath>
#include <random>

#include "base/error.h"
#include "model/model.h"

namespace onellm {
namespace {

// Deterministic on every platform (std::normal_distribution is not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  float uniform() { return static_cast<float>((gen_() >> 11) * (1.0 / 9007199254740992.0)); }
  float normal() {
    float u1 = uniform(), u2 = uniform();
    if (u1 < 1e-12f) u1 = 1e-12f;
    return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.2831853f * u2);
  }

 private:
  std::mt19937_64 gen_;
};

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  std::vector<std::string> merges;
};

constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kByte = 6;

const char* const kWords[] = {"the", "and", "to", "of", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on",
                              "are", "with", "as", "I", "his", "they", "be", "at", "one", "have", "this", "from",
                              "once", "upon", "time", "there", "little", "dog", "cat", "play", "day", "said"};

Vocab spm_vocab() {
  Vocab v;
  auto add = [&](std::string t, float score, int32_t type) {
    v.tokens.push_back(std::move(t));
    v.scores.push_back(score);
    v.types.push_back(type);
  };
  add("<unk>", 0, kUnknown);
  add("<s>", 0, kControl);
  add("</s>", 0, kControl);
  static const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) add(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">", 0, kByte);
  const std::string sp = "\xE2\x96\x81";  // U+2581, SentencePiece's space
  add(sp, -1, kNormal);
  for (char ch = 'a'; ch <= 'z'; ++ch) add(std::string(1, ch), -2, kNormal);
  for (char ch = 'a'; ch <= 'z'; ++ch) add(sp + ch, -3, kNormal);
  float score = -4;
  for (const char* w : kWords) {
    std::string word(w);
    for (size_t n = 2; n <= word.size(); ++n) {
      std::string piece = sp + word.substr(0, n);
      bool seen = false;
      for (const auto& t : v.tokens) seen |= t == piece;
      if (!seen) add(piece, score -= 0.01f, kNormal);
    }
  }
  return v;
}

// GPT-2's reversible byte -> printable code point mapping.
std::string byte_to_symbol(int b) {
  int cp = b;
  if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
    int n = 0;
    for (int x = 0; x < b; ++x)
      if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) ++n;
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

Vocab bpe_vocab() {
  Vocab v;
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(byte_to_symbol(b));
    v.types.push_back(kNormal);
  }
  const std::string sp = byte_to_symbol(' ');
  auto has = [&](const std::string& t) {
    for (const auto& x : v.tokens)
      if (x == t) return true;
    return false;
  };
  // Merges build each word left to right, with and without a leading space.
  for (const char* w : kWords) {
    for (const std::string& start : {sp + w[0], std::string(1, w[0])}) {
      std::string cur = start;
      if (start.size() > 1 && !has(cur)) {
        v.merges.push_back(sp + " " + std::string(1, w[0]));
        v.tokens.push_back(cur);
        v.types.push_back(kNormal);
      }
      for (const char* p = w + 1; *p != 0; ++p) {
        std::string next = cur + *p;
        if (!has(next)) {
          v.merges.push_back(cur + " " + std::string(1, *p));
          v.tokens.push_back(next);
          v.types.push_back(kNormal);
        }
        cur = next;
      }
    }
  }
  for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    v.tokens.push_back(s);
    v.types.push_back(kControl);
  }
  return v;
}

const char* kChatmlTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

}  // namespace

void write_tiny_model(const TinyModelSpec& s, const std::string& path) {
  if (s.arch != "llama" && s.arch != "qwen2" && s.arch != "qwen3")
    throw Error("make-tiny-model: unknown architecture '" + s.arch + "' (llama, qwen2, qwen3)");
  const int64_t head_dim = s.head_dim > 0 ? s.head_dim : s.n_embd / s.n_head;
  const bool is_llama = s.arch == "llama";
  Vocab vocab = is_llama ? spm_vocab() : bpe_vocab();
  const int64_t base_vocab = static_cast<int64_t>(vocab.tokens.size());
  if (s.n_vocab > 0 && s.n_vocab < base_vocab)
    throw Error("make-tiny-model: vocabulary must have at least " + std::to_string(base_vocab) + " tokens");
  for (int64_t i = base_vocab; i < s.n_vocab; ++i) {
    // Normal tokens with visible text: a random model picks them often, and
    // service benchmarks need the text to stream.
    vocab.tokens.push_back("<t" + std::to_string(i) + ">");
    vocab.types.push_back(kNormal);
    if (is_llama) vocab.scores.push_back(-1000);
  }
  const int64_t n_vocab = static_cast<int64_t>(vocab.tokens.size());

  GgufWriter w;
  const std::string a = s.arch + ".";
  w.set("general.architecture", GgufValue::of_string(s.arch));
  w.set("general.name", GgufValue::of_string("tiny-random-" + s.arch));
  w.set(a + "context_length", GgufValue::of_u32(static_cast<uint32_t>(s.n_ctx)));
  w.set(a + "embedding_length", GgufValue::of_u32(static_cast<uint32_t>(s.n_embd)));
  w.set(a + "block_count", GgufValue::of_u32(static_cast<uint32_t>(s.n_layer)));
  w.set(a + "feed_forward_length", GgufValue::of_u32(static_cast<uint32_t>(s.n_ff)));
  w.set(a + "attention.head_count", GgufValue::of_u32(static_cast<uint32_t>(s.n_head)));
  w.set(a + "attention.head_count_kv", GgufValue::of_u32(static_cast<uint32_t>(s.n_head_kv)));
  w.set(a + "attention.key_length", GgufValue::of_u32(static_cast<uint32_t>(head_dim)));
  w.set(a + "attention.value_length", GgufValue::of_u32(static_cast<uint32_t>(head_dim)));
  w.set(a + "rope.dimension_count", GgufValue::of_u32(static_cast<uint32_t>(head_dim)));
  w.set(a + "attention.layer_norm_rms_epsilon", GgufValue::of_f32(is_llama ? 1e-5f : 1e-6f));
  w.set(a + "rope.freq_base", GgufValue::of_f32(is_llama ? 10000.0f : 1000000.0f));
  w.set("tokenizer.ggml.model", GgufValue::of_string(is_llama ? "llama" : "gpt2"));
  if (!is_llama) w.set("tokenizer.ggml.pre", GgufValue::of_string("qwen2"));
  w.set("tokenizer.ggml.tokens", GgufValue::of_strings(vocab.tokens));
  if (is_llama) w.set("tokenizer.ggml.scores", GgufValue::of_f32s(vocab.scores));
  w.set("tokenizer.ggml.token_type", GgufValue::of_i32s(vocab.types));
  if (!is_llama) w.set("tokenizer.ggml.merges", GgufValue::of_strings(vocab.merges));
  const uint32_t eos = is_llama ? 2 : static_cast<uint32_t>(base_vocab - 3);
  w.set("tokenizer.ggml.bos_token_id", GgufValue::of_u32(is_llama ? 1 : eos));
  w.set("tokenizer.ggml.eos_token_id", GgufValue::of_u32(is_llama ? 2 : static_cast<uint32_t>(base_vocab - 1)));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::of_bool(is_llama));
  if (!is_llama) w.set("tokenizer.chat_template", GgufValue::of_string(kChatmlTemplate));

  Rng rng(s.seed);
  auto matrix = [&](const std::string& name, int64_t cols, int64_t rows) {
    std::vector<float> vals(static_cast<size_t>(cols * rows));
    const float std_dev = 1.0f / std::sqrt(static_cast<float>(cols));
    for (float& x : vals) x = rng.normal() * std_dev;
    w.add_tensor_f32(name, s.type, {cols, rows}, vals.data());
  };
  auto vec = [&](const std::string& name, int64_t n, float lo, float hi) {
    std::vector<float> vals(static_cast<size_t>(n));
    for (float& x : vals) x = lo + (hi - lo) * rng.uniform();
    w.add_tensor_f32(name, TensorType::F32, {n}, vals.data());
  };
  const int64_t q_dim = s.n_head * head_dim, kv_dim = s.n_head_kv * head_dim;
  matrix("token_embd.weight", s.n_embd, n_vocab);
  vec("output_norm.weight", s.n_embd, 0.8f, 1.2f);
  if (!s.tied_output) matrix("output.weight", s.n_embd, n_vocab);
  if (s.llama3_rope_freqs) vec("rope_freqs.weight", head_dim / 2, 1.0f, 8.0f);
  for (int64_t l = 0; l < s.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    vec(p + "attn_norm.weight", s.n_embd, 0.8f, 1.2f);
    matrix(p + "attn_q.weight", s.n_embd, q_dim);
    matrix(p + "attn_k.weight", s.n_embd, kv_dim);
    matrix(p + "attn_v.weight", s.n_embd, kv_dim);
    if (s.arch == "qwen2") {
      vec(p + "attn_q.bias", q_dim, -0.2f, 0.2f);
      vec(p + "attn_k.bias", kv_dim, -0.2f, 0.2f);
      vec(p + "attn_v.bias", kv_dim, -0.2f, 0.2f);
    }
    if (s.arch == "qwen3") {
      vec(p + "attn_q_norm.weight", head_dim, 0.8f, 1.2f);
      vec(p + "attn_k_norm.weight", head_dim, 0.8f, 1.2f);
    }
    matrix(p + "attn_output.weight", q_dim, s.n_embd);
    vec(p + "ffn_norm.weight", s.n_embd, 0.8f, 1.2f);
    matrix(p + "ffn_gate.weight", s.n_embd, s.n_ff);
    matrix(p + "ffn_up.weight", s.n_embd, s.n_ff);
    matrix(p + "ffn_down.weight", s.n_ff, s.n_embd);
  }
  w.write(path);
}

}  // namespace onellm
