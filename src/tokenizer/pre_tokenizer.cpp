// Pre-tokenizer regexes as llama.cpp maps each tokenizer.ggml.pre name to them
// (from the models' Hugging Face tokenizer.json), run with PCRE2 in UTF +
// Unicode-property mode. Two details keep the splits identical to llama.cpp:
// `\s` is rewritten to llama.cpp's exact whitespace set (PCRE2's also has
// U+180E), and `$` means end of text only (as in std::regex).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pre_tokenizer.h"

#include <pcre2.h>

#include <map>

#include "base/error.h"
#include "base/utf8.h"

namespace onellm {
namespace {

const char* const kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
const char* const kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kPoro = R"( ?[^(\s|.,!?…。，、।۔،)]+)";
// llama.cpp's rewrite of Tekken's case classes: "a letter that is not a-z"
// then "a letter that is not A-Z" (so non-ASCII letters fit both).
const char* const kTekken =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kGpt4o =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct Rules {
  std::vector<const char*> regexes;
  PreTokenizerTraits traits;
};

PreTokenizerTraits traits(bool clean_spaces, bool ignore_merges = false, bool add_bos = false) {
  PreTokenizerTraits t;
  t.clean_spaces = clean_spaces;
  t.ignore_merges = ignore_merges;
  t.add_bos = add_bos;
  return t;
}

const std::map<std::string, Rules>& rule_table() {
  static const std::map<std::string, Rules> table = [] {
    std::map<std::string, Rules> t;
    t["default"] = {{R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}, traits(true)};
    t[""] = t["default"];
    for (const char* n : {"llama3", "llama-v3", "llama-bpe", "falcon3"}) t[n] = {{kLlama3}, traits(true, true, true)};
    for (const char* n : {"dbrx", "smaug-bpe"}) t[n] = {{kLlama3}, traits(true)};
    for (const char* n : {"gpt-2", "gpt2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
                          "jina-v2-de", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais"})
      t[n] = {{kGpt2}, traits(true)};
    for (const char* n : {"starcoder", "refact", "codeshell", "exaone", "minerva-7b"})
      t[n] = {{R"(\p{N})", kGpt2}, traits(true)};
    for (const char* n : {"command-r", "smollm"}) t[n] = {{R"(\p{N})", kGpt2}, traits(false)};
    t["falcon"] = {{R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}, traits(true)};
    for (const char* n : {"qwen2", "deepseek-r1-qwen"}) t[n] = {{kQwen2}, traits(false)};
    for (const char* n : {"stablelm2", "megrez"}) t[n] = {{kQwen2}, traits(true)};
    // llama.cpp hands its regex engine non-ASCII spaces as \v, so the
    // U+3000 that starts this model's punctuation range never matches there.
    t["deepseek-llm"] = {{R"([\r\n])",
                          R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF})"
                          R"(\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3})"
                          R"(-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-)"
                          R"(\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00})"
                          R"(-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D})"
                          R"(\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0})"
                          R"(-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A})"
                          R"(-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139})"
                          R"(\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB})"
                          R"(-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B})"
                          R"(-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400})"
                          R"(-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-)"
                          R"(\x{118DF}\x{1E900}-\x{1E943}]+)",
                          R"(\s?[!-/:-~！-／：-～‘-‟\x{3001}-\x{3002}]+)", R"(\s+$)", R"([一-龥ࠀ-一가-퟿]+)", R"(\p{N}+)"},
                         traits(false)};
    t["deepseek-coder"] = {{R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)", R"([一-龥ࠀ-一가-퟿]+)", R"(\p{N})"},
                           traits(false)};
    t["deepseek-v3"] = {{R"(\p{N}{1,3})", R"([一-龥぀-ゟ゠-ヿ]+)",
                         // llama.cpp's ASCII table leaves '~' out of \p{S}; so do we.
                         R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|(?:~|[^\r\n\p{L}\p{P}\p{S}])?[\p{L}\p{M}]+| ?(?:(?!~)[\p{P}\p{S}])+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
                        traits(false)};
    t["poro-chat"] = {{kPoro}, traits(false)};
    for (const char* n : {"bloom", "gpt3-finnish"}) t[n] = {{kPoro}, traits(true)};
    t["viking"] = {{kPoro, R"(\p{N})"}, traits(false)};
    t["tekken"] = {{kTekken}, traits(false, true, true)};
    t["chameleon"] = {{"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", R"(([\t\n]|    |  ))", R"(\p{N})",
                       R"([\p{P}!-/:-@\[-`{-~])", kGpt2},
                      traits(false, false, true)};
    t["chatglm-bpe"] = {{kLlama3}, traits(true)};
    t["chatglm-bpe"].traits.no_bos = true;
    // Newer than the llama.cpp the goldens come from; its later versions use
    // this regex with clean-up off.
    for (const char* n : {"gpt-4o", "llama4"}) t[n] = {{kGpt4o}, traits(false)};
    return t;
  }();
  return table;
}

// llama.cpp's whitespace set (unicode_set_whitespace), as class members.
const char* const kSpaceClass = R"(\t\n\x{0B}\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

// Replaces \s and \S with explicit classes of kSpaceClass.
std::string rewrite_spaces(const std::string& pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      if (e == 's') {
        out += in_class ? std::string(kSpaceClass) : "[" + std::string(kSpaceClass) + "]";
      } else if (e == 'S') {
        if (in_class) throw Error("pre-tokenizer regex uses \\S inside a class: " + pattern);
        out += "[^" + std::string(kSpaceClass) + "]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];  // literal ] first
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

// The regex subject: surrogate code points (which llama.cpp lets through but
// PCRE2 cannot read) become U+E000, also three bytes and also neither letter,
// number nor space, so every pattern splits the same way around them.
std::string pcre_subject(const std::string& clean) {
  std::string s = clean;
  for (size_t i = 0; i + 2 < s.size(); ++i) {
    if (static_cast<unsigned char>(s[i]) == 0xED && static_cast<unsigned char>(s[i + 1]) >= 0xA0) {
      s[i] = static_cast<char>(0xEE);
      s[i + 1] = static_cast<char>(0x80);
      s[i + 2] = static_cast<char>(0x80);
    }
  }
  return s;
}

}  // namespace

std::string sanitize_utf8_like_llama(std::string_view t) {
  std::string out;
  out.reserve(t.size());
  auto cont = [&](size_t i) { return i < t.size() && (static_cast<unsigned char>(t[i]) & 0xC0) == 0x80; };
  for (size_t i = 0; i < t.size();) {
    const unsigned char b = static_cast<unsigned char>(t[i]);
    uint32_t cp = 0xFFFD;
    size_t len = 1;
    if (b < 0x80) {
      cp = b;
    } else if ((b & 0x40) == 0) {
      // stray continuation byte
    } else if ((b & 0x20) == 0) {
      if (cont(i + 1)) cp = ((b & 0x1Fu) << 6) | (t[i + 1] & 0x3Fu), len = 2;
    } else if ((b & 0x10) == 0) {
      if (cont(i + 1) && cont(i + 2))
        cp = ((b & 0x0Fu) << 12) | ((t[i + 1] & 0x3Fu) << 6) | (t[i + 2] & 0x3Fu), len = 3;
    } else if ((b & 0x08) == 0) {
      if (cont(i + 1) && cont(i + 2) && cont(i + 3)) {
        cp = ((b & 0x07u) << 18) | ((t[i + 1] & 0x3Fu) << 12) | ((t[i + 2] & 0x3Fu) << 6) | (t[i + 3] & 0x3Fu);
        len = 4;
        if (cp > 0x10FFFF) cp = 0xFFFD, len = 1;  // llama.cpp cannot encode it back; treat the byte as bad
      }
    }
    append_utf8(out, cp);
    i += len;
  }
  return out;
}

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

std::vector<std::string> PreTokenizer::known_names() {
  std::vector<std::string> names;
  for (const auto& [n, r] : rule_table())
    if (!n.empty()) names.push_back(n);
  return names;
}

PreTokenizer::PreTokenizer(const std::string& name) : name_(name) {
  const auto& table = rule_table();
  auto it = table.find(name);
  if (it == table.end()) {
    std::string known;
    for (const std::string& n : known_names()) known += (known.empty() ? "" : ", ") + n;
    throw Error("pre-tokenizer '" + name + "' (tokenizer.ggml.pre) is not supported; known: " + known);
  }
  traits_ = it->second.traits;
  for (const char* raw : it->second.regexes) {
    const std::string pattern = rewrite_spaces(raw);
    auto re = std::make_unique<Regex>();
    int err = 0;
    PCRE2_SIZE offset = 0;
    re->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                             PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &offset, nullptr);
    if (re->code == nullptr) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw Error("pre-tokenizer '" + name + "': regex does not compile at " + std::to_string(offset) + ": " +
                  reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);  // optional speed-up; the interpreter is the fallback
    regexes_.push_back(std::move(re));
  }
}

PreTokenizer::~PreTokenizer() = default;

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
  const std::string clean = sanitize_utf8_like_llama(text);
  const std::string subject = pcre_subject(clean);
  std::vector<std::pair<size_t, size_t>> pieces;  // [begin, end) in clean
  if (!clean.empty()) pieces.push_back({0, clean.size()});
  // Match data and context per call keep split() safe to run from several
  // threads. The limits are raised because a long run of spaces makes
  // `\s*[\r\n]+` backtrack over all of it once (linear, but past PCRE2's
  // default of ten million steps for a multi-megabyte run).
  std::unique_ptr<pcre2_match_context, decltype(&pcre2_match_context_free)> ctx(pcre2_match_context_create(nullptr),
                                                                               pcre2_match_context_free);
  if (!ctx) throw Error("pre-tokenizer '" + name_ + "': out of memory");
  pcre2_set_match_limit(ctx.get(), 0xFFFFFFFFu);
  pcre2_set_depth_limit(ctx.get(), 0xFFFFFFFFu);
  for (const auto& re : regexes_) {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
        pcre2_match_data_create_from_pattern(re->code, nullptr), pcre2_match_data_free);
    if (!md) throw Error("pre-tokenizer '" + name_ + "': out of memory");
    std::vector<std::pair<size_t, size_t>> next;
    next.reserve(pieces.size() * 2);
    for (const auto& [begin, end] : pieces) {
      // The piece is the whole subject, so lookaheads and $ stop at its end.
      const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data() + begin);
      const size_t n = end - begin;
      size_t start = 0, gap = 0;
      while (start < n) {
        int rc = pcre2_match(re->code, s, n, start, PCRE2_NO_UTF_CHECK, md.get(), ctx.get());
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
          rc = pcre2_match(re->code, s, n, start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md.get(), ctx.get());
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          PCRE2_UCHAR msg[256];
          pcre2_get_error_message(rc, msg, sizeof msg);
          throw Error("pre-tokenizer '" + name_ + "': regex match failed on a piece of " + std::to_string(n) +
                      " bytes: " + reinterpret_cast<const char*>(msg));
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
        const size_t mb = ov[0], me = ov[1];
        if (me == mb) {  // an empty match splits nothing: step one character on
          start = mb + 1;
          while (start < n && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) ++start;
          continue;
        }
        if (mb > gap) next.push_back({begin + gap, begin + mb});
        next.push_back({begin + mb, begin + me});
        gap = start = me;
      }
      if (gap < n) next.push_back({begin + gap, end});
    }
    pieces = std::move(next);
  }
  std::vector<std::string> words;
  words.reserve(pieces.size());
  for (const auto& [begin, end] : pieces) words.emplace_back(clean, begin, end - begin);
  return words;
}

}  // namespace onellm
