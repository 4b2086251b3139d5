// Pre-tokenizer regexes as the models were trained with (the Hugging Face
// tokenizer.json pre_tokenizers that llama.cpp maps to each
// tokenizer.ggml.pre name), run with PCRE2 in UTF + Unicode-property mode.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pre_tokenizer.h"

#include <pcre2.h>

#include <map>

#include "base/error.h"

namespace onellm {
namespace {

const char* const kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
const char* const kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct Rules {
  std::vector<const char*> regexes;
  PreTokenizerTraits traits;
};

const std::map<std::string, Rules>& rule_table() {
  static const std::map<std::string, Rules> table = [] {
    std::map<std::string, Rules> t;
    const Rules gpt2{{kGpt2}, {true, false}};
    const Rules llama3{{kLlama3}, {true, true}};
    const Rules digits_then_gpt2{{R"(\p{N})", kGpt2}, {true, false}};
    t["default"] = {{R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}, {true, false}};
    t[""] = t["default"];
    for (const char* n : {"llama3", "llama-v3", "llama-bpe", "falcon3"}) t[n] = llama3;
    for (const char* n : {"gpt-2", "gpt2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
                          "jina-v2-de", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais"})
      t[n] = gpt2;
    for (const char* n : {"starcoder", "refact", "codeshell", "exaone", "minerva-7b"}) t[n] = digits_then_gpt2;
    t["command-r"] = {{R"(\p{N})", kGpt2}, {false, false}};
    t["smollm"] = {{R"(\p{N})", kGpt2}, {false, false}};
    t["falcon"] = {{R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}, {true, false}};
    t["qwen2"] = {{kQwen2}, {false, false}};
    t["stablelm2"] = {{kQwen2}, {true, false}};
    t["megrez"] = t["qwen2"];
    t["deepseek-llm"] = {{R"([\r\n])",
                          R"(\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+)",
                          R"(\s?[!-/:-~！-／：-～‘-‟　-。]+)", R"(\s+$)", R"([一-龥ࠀ-一가-퟿]+)", R"(\p{N}+)"},
                         {false, false}};
    t["deepseek-coder"] = {{R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)", R"([一-龥ࠀ-一가-퟿]+)", R"(\p{N})"},
                           {false, false}};
    t["deepseek-v3"] = {{R"(\p{N}{1,3})", R"([一-龥぀-ゟ゠-ヿ]+)",
                         R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
                        {false, false}};
    t["poro-chat"] = {{R"( ?[^(\s|.,!?…。，、।۔،)]+)"}, {false, false}};
    t["bloom"] = {{R"( ?[^(\s|.,!?…。，、।۔،)]+)"}, {true, false}};
    t["gpt3-finnish"] = t["bloom"];
    t["viking"] = {{R"( ?[^(\s|.,!?…。，、।۔،)]+)", R"(\p{N})"}, {false, false}};
    t["tekken"] = {{R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
                   {false, true}};
    t["gpt-4o"] = {{R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
                   {true, false}};
    t["chatglm-bpe"] = {{kLlama3}, {true, false}};
    t["dbrx"] = llama3;
    t["smaug-bpe"] = llama3;
    return t;
  }();
  return table;
}

}  // namespace

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  pcre2_match_data* match = nullptr;
  ~Regex() {
    pcre2_match_data_free(match);
    pcre2_code_free(code);
  }
};

PreTokenizer::PreTokenizer(const std::string& name) {
  const auto& table = rule_table();
  auto it = table.find(name);
  if (it == table.end()) {
    std::string known;
    for (const auto& [n, r] : table)
      if (!n.empty()) known += (known.empty() ? "" : ", ") + n;
    throw Error("pre-tokenizer '" + name + "' (tokenizer.ggml.pre) is not supported; known: " + known);
  }
  traits_ = it->second.traits;
  for (const char* pattern : it->second.regexes) {
    auto re = std::make_unique<Regex>();
    int err = 0;
    PCRE2_SIZE offset = 0;
    re->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &offset, nullptr);
    if (re->code == nullptr) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw Error("pre-tokenizer '" + name + "': regex does not compile at " + std::to_string(offset) + ": " +
                  reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);  // optional speed-up; falls back to the interpreter
    re->match = pcre2_match_data_create_from_pattern(re->code, nullptr);
    regexes_.push_back(std::move(re));
  }
}

PreTokenizer::~PreTokenizer() = default;

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string> pieces{std::string(text)};
  for (const auto& re : regexes_) {
    std::vector<std::string> next;
    for (const std::string& piece : pieces) {
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
      size_t start = 0, gap_start = 0;
      while (start <= piece.size()) {
        int rc = pcre2_match(re->code, subject, piece.size(), start, 0, re->match, nullptr);
        if (rc < 0) break;  // no more matches (or a matching error: keep the rest as one piece)
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(re->match);
        size_t m_begin = ov[0], m_end = ov[1];
        if (m_end == m_begin) {  // an empty match splits nothing; step one character on
          start = m_end + 1;
          while (start < piece.size() && (static_cast<unsigned char>(piece[start]) & 0xC0) == 0x80) ++start;
          continue;
        }
        if (m_begin > gap_start) next.push_back(piece.substr(gap_start, m_begin - gap_start));
        next.push_back(piece.substr(m_begin, m_end - m_begin));
        gap_start = start = m_end;
      }
      if (gap_start < piece.size()) next.push_back(piece.substr(gap_start));
    }
    pieces = std::move(next);
  }
  return pieces;
}

}  // namespace onellm
