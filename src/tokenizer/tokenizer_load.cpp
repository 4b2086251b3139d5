// Building a Tokenizer from GGUF metadata, with llama.cpp's defaults for
// keys a file leaves out (llama-vocab.cpp, load()), and validation of
// everything it puts in.
#include <algorithm>
#include <atomic>
#include <cctype>

#include "base/error.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace onellm {
namespace {

// A special token id from `key`, or `fallback` when the key is absent or holds
// the converters' "none" marker (-1 / 0xFFFFFFFF; llama.cpp keeps its default
// then too). Any other id outside the vocabulary is an error.
int32_t read_id(const GgufFile& f, const std::string& key, int32_t fallback, int32_t n_vocab) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return fallback;
  if (!v->is_integer()) throw Error(f.path() + ": key '" + key + "' must be an integer token id");
  const int64_t id = v->as_int();
  if (id < 0 || id == 0xFFFFFFFFLL) return fallback;
  if (id >= n_vocab)
    throw Error(f.path() + ": key '" + key + "' = " + std::to_string(id) + " is outside the vocabulary of " +
                std::to_string(n_vocab) + " tokens");
  return static_cast<int32_t>(id);
}

const GgufValue* per_token_array(const GgufFile& f, const std::string& key, size_t n, bool integers) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return nullptr;
  const GgufType e = v->elem_type;
  const bool numbers = e == GgufType::FLOAT32 || e == GgufType::FLOAT64 || e == GgufType::BOOL;
  const bool ok = v->type == GgufType::ARRAY && v->size() == n &&
                  (GgufValue::is_integer_type(e) || (!integers && numbers));
  if (!ok)
    throw Error(f.path() + ": '" + key + "' must be " + std::to_string(n) + (integers ? " integers" : " numbers") +
                ", one per token (tokenizer.ggml.tokens)");
  return v;
}

// Texts by which llama.cpp recognises tokens its converters do not name.
const char* const kEotTexts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
                                 "<｜end▁of▁sentence｜>"};
const char* const kEomTexts[] = {"<|eom_id|>"};
const char* const kFimPreTexts[] = {"<|fim_prefix|>", "<fim-prefix>", "<｜fim▁begin｜>", "<PRE>"};
const char* const kFimSufTexts[] = {"<|fim_suffix|>", "<fim-suffix>", "<｜fim▁hole｜>", "<SUF>"};
const char* const kFimMidTexts[] = {"<|fim_middle|>", "<fim-middle>", "<｜fim▁end｜>", "<MID>"};
const char* const kFimPadTexts[] = {"<|fim_pad|>", "<fim-pad>", "<PAD>"};
const char* const kFimRepTexts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>"};
const char* const kFimSepTexts[] = {"<|file_sep|>"};
const char* const kEogTexts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                 "<|eom_id|>", "<EOT>"};

}  // namespace

Tokenizer::~Tokenizer() = default;

uint64_t Tokenizer::next_instance_id() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GgufFile& f) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->source_ = f.path();
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model == "gpt2") t->bpe_ = true;
  else if (model != "llama")
    throw Error(f.path() + ": tokenizer.ggml.model = '" + model + "' is not supported (llama, gpt2)");

  const GgufValue& tokens = f.get_array("tokenizer.ggml.tokens");
  if (tokens.elem_type != GgufType::STRING)
    throw Error(f.path() + ": 'tokenizer.ggml.tokens' must be an array of strings");
  if (tokens.size() == 0) throw Error(f.path() + ": 'tokenizer.ggml.tokens' is empty");
  if (tokens.size() > 0x7FFFFFFF) throw Error(f.path() + ": 'tokenizer.ggml.tokens' is too long");
  const size_t n = tokens.size();
  const int32_t nv = static_cast<int32_t>(n);
  t->tokens_.reserve(n, tokens.elems.size());
  for (size_t i = 0; i < n; ++i) {
    // As llama.cpp: an empty text could never be matched or printed; a text
    // found twice means its last id (llama.cpp's map assignment).
    const std::string_view s = tokens.string_at(i);
    t->tokens_.add(s.empty() ? "[EMPTY_" + std::to_string(i) + "]" : s, true);
  }

  t->scores_.assign(n, 0.0f);
  if (const GgufValue* scores = per_token_array(f, "tokenizer.ggml.scores", n, false))
    for (size_t i = 0; i < n; ++i) t->scores_[i] = static_cast<float>(scores->number_at(i));
  t->kinds_.assign(n, TokenKind::kNormal);
  if (const GgufValue* types = per_token_array(f, "tokenizer.ggml.token_type", n, true)) {
    for (size_t i = 0; i < n; ++i) {
      const int64_t k = types->int_at(i);
      t->kinds_[i] = (k >= 1 && k <= 6) ? static_cast<TokenKind>(k) : TokenKind::kUndefined;
    }
  }

  const std::string pre_key = f.get_string_or("tokenizer.ggml.pre", "");
  PreTokenizerTraits traits;
  if (t->bpe_) {
    const GgufValue& merges = f.get_array("tokenizer.ggml.merges");
    if (merges.elem_type != GgufType::STRING) throw Error(f.path() + ": 'tokenizer.ggml.merges' must be strings");
    t->merges_.reserve(merges.size(), merges.elems.size());
    for (size_t r = 0; r < merges.size(); ++r) {
      const std::string_view m = merges.string_at(r);
      if (m.find(' ', 1) == std::string::npos)
        throw Error(f.path() + ": tokenizer.ggml.merges #" + std::to_string(r) + " '" + std::string(m) +
                    "' is not two symbols separated by a space");
      t->merges_.add(m, false);  // a repeated merge keeps its first rank, as llama.cpp
    }
    t->pre_ = std::make_unique<PreTokenizer>(pre_key);
    t->pre_name_ = pre_key.empty() ? "default" : pre_key;
    traits = t->pre_->traits();
    t->clean_spaces_ = traits.clean_spaces;
    t->ignore_merges_ = traits.ignore_merges;
  }

  auto default_id = [&](int32_t id) { return id < nv ? id : -1; };
  const int32_t default_bos = t->bpe_ ? (traits.no_bos ? -1 : default_id(11)) : default_id(1);
  t->bos_ = read_id(f, "tokenizer.ggml.bos_token_id", default_bos, nv);
  t->eos_ = read_id(f, "tokenizer.ggml.eos_token_id", default_id(t->bpe_ ? 11 : 2), nv);
  t->unk_ = read_id(f, "tokenizer.ggml.unknown_token_id", t->bpe_ ? -1 : default_id(0), nv);
  t->pad_ = read_id(f, "tokenizer.ggml.padding_token_id", -1, nv);
  read_id(f, "tokenizer.ggml.seperator_token_id", -1, nv);  // validated only
  read_id(f, "tokenizer.ggml.mask_token_id", -1, nv);
  t->eot_ = read_id(f, "tokenizer.ggml.eot_token_id", -1, nv);
  int32_t eom = read_id(f, "tokenizer.ggml.eom_token_id", -1, nv);
  int32_t fim_pre = read_id(f, "tokenizer.ggml.fim_pre_token_id", -1, nv);
  int32_t fim_suf = read_id(f, "tokenizer.ggml.fim_suf_token_id", -1, nv);
  int32_t fim_mid = read_id(f, "tokenizer.ggml.fim_mid_token_id", -1, nv);
  int32_t fim_pad = read_id(f, "tokenizer.ggml.fim_pad_token_id", -1, nv);
  int32_t fim_rep = read_id(f, "tokenizer.ggml.fim_rep_token_id", -1, nv);
  int32_t fim_sep = read_id(f, "tokenizer.ggml.fim_sep_token_id", -1, nv);
  fim_pre = read_id(f, "tokenizer.ggml.prefix_token_id", fim_pre, nv);  // deprecated names
  fim_suf = read_id(f, "tokenizer.ggml.suffix_token_id", fim_suf, nv);
  fim_mid = read_id(f, "tokenizer.ggml.middle_token_id", fim_mid, nv);

  t->add_space_prefix_ = f.get_bool_or("tokenizer.ggml.add_space_prefix", !t->bpe_);
  t->add_bos_ = f.get_bool_or("tokenizer.ggml.add_bos_token", t->bpe_ ? traits.add_bos : true);
  t->add_eos_ = f.get_bool_or("tokenizer.ggml.add_eos_token", false);

  // Tokens found by text become control tokens (llama.cpp overrides their
  // type too, so they decode and match like the control tokens they are).
  auto make_control = [&](int32_t id) { t->kinds_[static_cast<size_t>(id)] = TokenKind::kControl; };
  auto detect = [&](int32_t& id, const auto& texts) {
    if (id >= 0) return;
    for (const char* text : texts) {
      if (const int32_t found = t->tokens_.find(text); found >= 0) {
        id = found;
        make_control(id);
        return;
      }
    }
  };
  detect(t->eot_, kEotTexts);
  detect(eom, kEomTexts);
  detect(fim_pre, kFimPreTexts);
  detect(fim_suf, kFimSufTexts);
  detect(fim_mid, kFimMidTexts);
  detect(fim_pad, kFimPadTexts);
  detect(fim_rep, kFimRepTexts);
  detect(fim_sep, kFimSepTexts);

  t->eog_.assign(n, false);
  t->fim_ = {fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep};
  for (int32_t id : {fim_pad, fim_rep, fim_sep, t->eos_, t->eot_, eom})
    if (id >= 0) t->eog_[static_cast<size_t>(id)] = true;
  for (const char* text : kEogTexts) {
    if (const int32_t id = t->tokens_.find(text); id >= 0) {
      t->eog_[static_cast<size_t>(id)] = true;
      make_control(id);
    }
  }

  for (size_t i = 0; i < n; ++i) {
    const TokenKind k = t->kinds_[i];
    if (k == TokenKind::kControl || k == TokenKind::kUserDefined || k == TokenKind::kUnknown)
      t->special_by_length_.push_back(static_cast<int32_t>(i));
  }
  std::stable_sort(t->special_by_length_.begin(), t->special_by_length_.end(), [&](int32_t a, int32_t b) {
    return t->tokens_.at(a).size() > t->tokens_.at(b).size();
  });

  // Per-model whitespace stripping around special tokens, which llama.cpp
  // decides from the model name and pre-tokenizer (GGUF has no field for it).
  t->strip_.assign(n, 0);
  auto set_strip = [&](std::string_view text, uint8_t flag, bool on) {
    const int32_t id = t->tokens_.find(text);
    if (id < 0) return;
    uint8_t& s = t->strip_[static_cast<size_t>(id)];
    s = on ? (s | flag) : (s & ~flag);
  };
  std::string name = f.get_string_or("general.name", "");
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  if (pre_key.find("jina-v2-de") != std::string::npos || pre_key.find("jina-v2-es") != std::string::npos ||
      pre_key.find("jina-v2-code") != std::string::npos) {
    set_strip("<mask>", kStripLeft, true);
  } else if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (int32_t id : t->special_by_length_) t->strip_[static_cast<size_t>(id)] |= kStripRight;
    set_strip("</s>", kStripRight, true);
    for (const char* text : {"<unk>", "<s>", "<|endoftext|>"}) set_strip(text, kStripRight, false);
  }

  if (!t->bpe_) {
    const std::string_view space = "\xE2\x96\x81";
    t->spm_words_independent_ = true;
    for (int32_t id = 0; id < t->tokens_.size(); ++id) {
      const std::string_view text = t->tokens_.at(id);
      for (size_t p = text.find(space, 1); p != std::string_view::npos; p = text.find(space, p + 1)) {
        if (p < 3 || text.compare(p - 3, 3, space) != 0) t->spm_words_independent_ = false;
      }
    }
    static const char* hex = "0123456789ABCDEF";
    t->spm_byte_ids_.assign(256, -1);
    for (int b = 0; b < 256; ++b) {
      const char name6[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
      int32_t id = t->lookup(std::string_view(name6, 6));
      if (id < 0) id = t->lookup(std::string(1, static_cast<char>(b)));
      t->spm_byte_ids_[static_cast<size_t>(b)] = id;
    }
  }
  return t;
}

}  // namespace onellm
