// Building a Tokenizer from GGUF metadata, with llama.cpp's defaults for
// keys a file leaves out, and validation of everything it puts in.
#include <algorithm>

#include "base/error.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace onellm {
namespace {

int32_t optional_id(const GgufFile& f, const std::string& key, int32_t fallback, int32_t n_vocab) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return fallback;
  if (!v->is_integer()) throw Error(f.path() + ": key '" + key + "' must be an integer");
  int64_t id = v->as_int();
  // Converters write 0xFFFFFFFF (or -1) for "none".
  if (id < 0 || id == 0xFFFFFFFF) return -1;
  if (id >= n_vocab)
    throw Error(f.path() + ": key '" + key + "' = " + std::to_string(id) + " is outside the vocabulary of " +
                std::to_string(n_vocab) + " tokens");
  return static_cast<int32_t>(id);
}

// Token texts that end a turn in common chat formats.
const char* const kEndOfGenerationTexts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                             "<|eom_id|>", "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>"};

}  // namespace

Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GgufFile& f) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->source_ = f.path();
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model == "gpt2") t->bpe_ = true;
  else if (model != "llama")
    throw Error(f.path() + ": tokenizer model '" + model + "' (tokenizer.ggml.model) is not supported (llama, gpt2)");

  const GgufValue& tokens = f.get_array("tokenizer.ggml.tokens");
  if (tokens.elem_type != GgufType::STRING) throw Error(f.path() + ": 'tokenizer.ggml.tokens' must be an array of strings");
  if (tokens.items.empty()) throw Error(f.path() + ": 'tokenizer.ggml.tokens' is empty");
  const size_t n = tokens.items.size();
  t->tokens_.reserve(n);
  for (const GgufValue& v : tokens.items) t->tokens_.push_back(v.str);

  t->scores_.assign(n, 0.0f);
  if (const GgufValue* scores = f.find("tokenizer.ggml.scores")) {
    if (scores->type != GgufType::ARRAY || scores->items.size() != n || !(n == 0 || scores->items[0].is_numeric()))
      throw Error(f.path() + ": 'tokenizer.ggml.scores' must be " + std::to_string(n) + " numbers, one per token");
    for (size_t i = 0; i < n; ++i) t->scores_[i] = static_cast<float>(scores->items[i].as_double());
  }
  t->kinds_.assign(n, TokenKind::kNormal);
  if (const GgufValue* types = f.find("tokenizer.ggml.token_type")) {
    if (types->type != GgufType::ARRAY || types->items.size() != n || !(n == 0 || types->items[0].is_integer()))
      throw Error(f.path() + ": 'tokenizer.ggml.token_type' must be " + std::to_string(n) + " integers, one per token");
    for (size_t i = 0; i < n; ++i) {
      int64_t k = types->items[i].as_int();
      if (k < 0 || k > 6)
        throw Error(f.path() + ": token " + std::to_string(i) + " has unknown token type " + std::to_string(k));
      t->kinds_[i] = static_cast<TokenKind>(k);
    }
  }
  t->token_ids_.reserve(n);
  for (size_t i = 0; i < n; ++i) t->token_ids_.emplace(t->tokens_[i], static_cast<int32_t>(i));  // first wins

  const int32_t nv = static_cast<int32_t>(n);
  if (t->bpe_) {
    const GgufValue& merges = f.get_array("tokenizer.ggml.merges");
    if (merges.elem_type != GgufType::STRING) throw Error(f.path() + ": 'tokenizer.ggml.merges' must be strings");
    t->merge_ranks_.reserve(merges.items.size());
    for (size_t r = 0; r < merges.items.size(); ++r) {
      const std::string& m = merges.items[r].str;
      if (m.find(' ', 1) == std::string::npos)
        throw Error(f.path() + ": merge #" + std::to_string(r) + " '" + m + "' is not two symbols separated by a space");
      t->merge_ranks_.emplace(m, static_cast<int32_t>(r));
    }
    t->pre_name_ = f.get_string_or("tokenizer.ggml.pre", "default");
    t->pre_ = std::make_unique<PreTokenizer>(t->pre_name_);
    t->clean_spaces_ = t->pre_->traits().clean_spaces;
    t->ignore_merges_ = t->pre_->traits().ignore_merges;
    // The pre-tokenizers that ignore merges (Llama 3, Tekken) belong to
    // vocabularies that start with BOS; others do only if the key says so.
    const bool default_add_bos = t->ignore_merges_;
    t->bos_ = optional_id(f, "tokenizer.ggml.bos_token_id", std::min(11, nv - 1), nv);
    t->eos_ = optional_id(f, "tokenizer.ggml.eos_token_id", std::min(11, nv - 1), nv);
    t->unk_ = optional_id(f, "tokenizer.ggml.unknown_token_id", -1, nv);
    t->add_bos_ = f.get_bool_or("tokenizer.ggml.add_bos_token", default_add_bos);
    t->add_space_prefix_ = f.get_bool_or("tokenizer.ggml.add_space_prefix", false);
  } else {
    t->bos_ = optional_id(f, "tokenizer.ggml.bos_token_id", std::min(1, nv - 1), nv);
    t->eos_ = optional_id(f, "tokenizer.ggml.eos_token_id", std::min(2, nv - 1), nv);
    t->unk_ = optional_id(f, "tokenizer.ggml.unknown_token_id", 0, nv);
    t->add_bos_ = f.get_bool_or("tokenizer.ggml.add_bos_token", true);
    t->add_space_prefix_ = f.get_bool_or("tokenizer.ggml.add_space_prefix", true);
  }
  t->add_eos_ = f.get_bool_or("tokenizer.ggml.add_eos_token", false);

  t->eog_.assign(n, false);
  if (t->eos_ >= 0) t->eog_[static_cast<size_t>(t->eos_)] = true;
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    int32_t id = optional_id(f, key, -1, nv);
    if (id >= 0) t->eog_[static_cast<size_t>(id)] = true;
  }
  for (const char* text : kEndOfGenerationTexts) {
    auto it = t->token_ids_.find(text);
    if (it != t->token_ids_.end() && t->kinds_[static_cast<size_t>(it->second)] != TokenKind::kNormal)
      t->eog_[static_cast<size_t>(it->second)] = true;
  }

  for (size_t i = 0; i < n; ++i) {
    TokenKind k = t->kinds_[i];
    if ((k == TokenKind::kControl || k == TokenKind::kUserDefined || k == TokenKind::kUnknown) && !t->tokens_[i].empty())
      t->special_by_length_.push_back(static_cast<int32_t>(i));
  }
  std::stable_sort(t->special_by_length_.begin(), t->special_by_length_.end(), [&](int32_t a, int32_t b) {
    return t->tokens_[static_cast<size_t>(a)].size() > t->tokens_[static_cast<size_t>(b)].size();
  });
  return t;
}

}  // namespace onellm
