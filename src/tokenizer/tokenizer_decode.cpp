// Decoding: token ids back to bytes, as llama_token_to_piece and
// llama_detokenize do, plus streaming that only ever yields valid UTF-8.
#include "base/error.h"
#include "base/utf8.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_bytes.h"

namespace onellm {
namespace {

// Hugging Face's clean_up_tokenization_spaces, done in place exactly as
// llama_detokenize does it (including its quirk of zeroing the space after
// a lone " ' ", which the next comparison then sees).
void clean_up_spaces(std::string& text) {
  int32_t total = static_cast<int32_t>(text.size());
  // " ?", " !", " .", " ,"
  const int32_t total1 = total;
  total = total ? 1 : 0;
  for (int32_t i = 1; i < total1; ++i) {
    const char x = text[i];
    if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
    text[total++] = x;
  }
  // " ' " -> "'"
  const int32_t total2 = total;
  total = total ? 1 : 0;
  for (int32_t i = 1; i < total2; ++i) {
    const char x = text[i];
    if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
      --total;
      text[++i] = '\0';
    }
    text[total++] = x;
  }
  // " 's", " 'm", " 're", " 've" (but not " 't", " 'd", " 'll")
  const int32_t total3 = total;
  total = total ? 1 : 0;
  for (int32_t i = 1; i < total3; ++i) {
    const char x = text[i];
    if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
      const char x1 = text[i + 1];
      if (x1 == 's' || x1 == 'm') --total;
      else if (i + 2 < total3 && ((x1 == 'r' && text[i + 2] == 'e') || (x1 == 'v' && text[i + 2] == 'e'))) --total;
    }
    text[total++] = x;
  }
  text.resize(static_cast<size_t>(total));
}

// Reads the code point at s[i] of text that is well-formed apart from
// surrogates (as sanitize_utf8_like_llama leaves it).
uint32_t next_code_point(std::string_view s, size_t& i) {
  uint32_t cp = 0;
  if (!decode_utf8(s, i, cp)) cp = static_cast<unsigned char>(s[i++]);  // cannot happen after sanitizing
  return cp;
}

// A byte-level BPE token text back to bytes (llama.cpp's llama_decode_text,
// including how it marks characters outside the byte alphabet).
std::string bpe_token_bytes(std::string_view text) {
  static const char* hex = "0123456789abcdef";
  const std::string clean = sanitize_utf8_like_llama(text);
  std::string out;
  for (size_t i = 0; i < clean.size();) {
    const size_t start = i;
    const int byte = unicode_to_byte(next_code_point(clean, i));
    if (byte >= 0) {
      out += static_cast<char>(byte);
      continue;
    }
    out += "[UNK_BYTE_0x";
    for (size_t k = start; k < i; ++k) {
      out += hex[static_cast<unsigned char>(clean[k]) >> 4];
      out += hex[static_cast<unsigned char>(clean[k]) & 15];
    }
    out += text;
    out += "]";
  }
  return out;
}

// How many bytes of s starting at i form one well-formed UTF-8 character
// (> 0), or -n when the n bytes there are an unfinished one at the end of s,
// or 0 when s[i] cannot be part of any character.
int utf8_char_at(std::string_view s, size_t i, size_t* bad_len) {
  const unsigned char b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return 1;
  int need;
  unsigned char lo = 0x80, hi = 0xBF;  // the range allowed for the second byte
  if (b >= 0xC2 && b <= 0xDF) need = 1;
  else if (b >= 0xE0 && b <= 0xEF) need = 2, lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;
  else if (b >= 0xF0 && b <= 0xF4) need = 3, lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;
  else return *bad_len = 1, 0;
  for (int k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return -k;
    const unsigned char c = static_cast<unsigned char>(s[i + k]);
    if (k == 1 ? (c < lo || c > hi) : (c & 0xC0) != 0x80) return *bad_len = static_cast<size_t>(k), 0;
  }
  return need + 1;
}

const char* const kReplacement = "\xEF\xBF\xBD";

}  // namespace

void Tokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= n_vocab())
    throw Error(source_ + ": token id " + std::to_string(id) + " is outside the vocabulary of " +
                std::to_string(n_vocab()) + " tokens");
}

std::string_view Tokenizer::token_text(int32_t id) const {
  check_id(id);
  return tokens_.at(id);
}

TokenKind Tokenizer::token_kind(int32_t id) const {
  check_id(id);
  return kinds_[static_cast<size_t>(id)];
}

bool Tokenizer::is_eog(int32_t id) const { return id >= 0 && id < n_vocab() && eog_[static_cast<size_t>(id)]; }

bool Tokenizer::is_control(int32_t id) const {
  return id >= 0 && id < n_vocab() && kinds_[static_cast<size_t>(id)] == TokenKind::kControl;
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  const int32_t id = lookup(text);
  if (id < 0) return std::nullopt;
  return id;
}

std::string Tokenizer::token_to_piece(int32_t id, bool special) const {
  check_id(id);
  const std::string_view text = tokens_.at(id);
  switch (kinds_[static_cast<size_t>(id)]) {
    case TokenKind::kControl:
    case TokenKind::kUnknown:
      return special ? std::string(text) : std::string();
    case TokenKind::kUserDefined:
      return std::string(text);
    case TokenKind::kNormal:
      if (bpe_) return bpe_token_bytes(text);
      {
        std::string out;
        out.reserve(text.size());
        for (size_t i = 0; i < text.size(); ++i) {
          if (text.compare(i, 3, "\xE2\x96\x81") == 0) {
            out += ' ';
            i += 2;
          } else {
            out += text[i];
          }
        }
        return out;
      }
    case TokenKind::kByte:
      // SentencePiece "<0xXX>"; llama.cpp reads the two characters after
      // "<0x" as hex whatever the rest says. BPE byte tokens print nothing.
      if (bpe_) return std::string();
      {
        const std::string hex(text.size() > 3 ? text.substr(3, 2) : std::string_view());
        return std::string(1, static_cast<char>(std::strtol(hex.c_str(), nullptr, 16)));
      }
    case TokenKind::kUnused:
    case TokenKind::kUndefined:
      return std::string();
  }
  return std::string();
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool remove_special, bool unparse_special) const {
  size_t begin = 0, end = ids.size();
  // SentencePiece's space prefix comes off the first piece.
  bool remove_space = add_space_prefix_;
  if (remove_special && add_bos_ && end > begin && ids[begin] == bos_) {
    remove_space = false;
    ++begin;
  }
  if (remove_special && add_eos_ && end > begin && ids[end - 1] == eos_) --end;
  std::string text;
  for (size_t i = begin; i < end; ++i) {
    const std::string piece = token_to_piece(ids[i], unparse_special);
    text.append(piece, remove_space && !piece.empty() && piece[0] == ' ' ? 1 : 0);
    remove_space = false;
  }
  if (clean_spaces_) clean_up_spaces(text);
  return text;
}

size_t utf8_complete_prefix(std::string_view s) {
  // Look back at most 4 bytes for the lead byte of the last character.
  for (size_t back = 1; back <= 4 && back <= s.size(); ++back) {
    const unsigned char c = static_cast<unsigned char>(s[s.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    const size_t need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return need > back ? s.size() - back : s.size();
  }
  return s.size();  // only continuation bytes: invalid anyway, nothing to wait for
}

std::string StreamingDecoder::push(int32_t id) {
  pending_ += tokenizer_.token_to_piece(id, special_);
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    size_t bad = 0;
    const int n = utf8_char_at(pending_, i, &bad);
    if (n < 0) break;  // unfinished: wait for more bytes
    if (n == 0) {
      out += kReplacement;
      i += bad;
    } else {
      out.append(pending_, i, static_cast<size_t>(n));
      i += static_cast<size_t>(n);
    }
  }
  pending_.erase(0, i);
  return out;
}

std::string StreamingDecoder::flush() {
  std::string out = pending_.empty() ? std::string() : std::string(kReplacement);
  pending_.clear();
  return out;
}

}  // namespace onellm
