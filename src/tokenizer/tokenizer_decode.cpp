// Decoding: token ids back to bytes, as llama_token_to_piece and
// llama_detokenize do, plus streaming that never splits a UTF-8 character.
#include "base/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_bytes.h"

namespace onellm {
namespace {

// Some BPE vocabularies were trained with text whose punctuation had the
// space before it removed on decode (Hugging Face clean_up_tokenization).
std::string clean_up_spaces(const std::string& in) {
  std::string a;
  for (size_t i = 0; i < in.size(); ++i) {  // " ?", " !", " .", " ,"
    char x = in[i];
    if (i > 0 && in[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) a.pop_back();
    a += x;
  }
  std::string b;
  for (size_t i = 0; i < a.size(); ++i) {  // " ' " -> "'"
    char x = a[i];
    if (i > 0 && x == '\'' && i + 1 < a.size() && a[i - 1] == ' ' && a[i + 1] == ' ') {
      b.pop_back();
      b += x;
      ++i;  // drop the space after
      continue;
    }
    b += x;
  }
  std::string c;
  for (size_t i = 0; i < b.size(); ++i) {  // " 's", " 'm", " 're", " 've"
    char x = b[i];
    if (i > 0 && b[i - 1] == ' ' && x == '\'' && i + 1 < b.size()) {
      char x1 = b[i + 1];
      if (x1 == 's' || x1 == 'm') c.pop_back();
      else if (i + 2 < b.size() && ((x1 == 'r' && b[i + 2] == 'e') || (x1 == 'v' && b[i + 2] == 'e'))) c.pop_back();
    }
    c += x;
  }
  return c;
}

}  // namespace

void Tokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= n_vocab())
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(n_vocab()));
}

const std::string& Tokenizer::token_text(int32_t id) const {
  check_id(id);
  return tokens_[static_cast<size_t>(id)];
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
  auto it = token_ids_.find(std::string(text));
  if (it == token_ids_.end()) return std::nullopt;
  return it->second;
}

std::string Tokenizer::token_to_piece(int32_t id, bool special) const {
  check_id(id);
  const std::string& text = tokens_[static_cast<size_t>(id)];
  switch (kinds_[static_cast<size_t>(id)]) {
    case TokenKind::kControl:
    case TokenKind::kUnknown:
      return special ? text : std::string();
    case TokenKind::kUserDefined:
      return text;
    case TokenKind::kNormal:
    case TokenKind::kUndefined:
      if (bpe_) {
        std::vector<uint8_t> bytes = unicode_to_bytes(text);
        return std::string(bytes.begin(), bytes.end());
      } else {
        std::string out;
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
      if (!bpe_ && text.size() == 6 && text.compare(0, 3, "<0x") == 0)
        return std::string(1, static_cast<char>(std::stoi(text.substr(3, 2), nullptr, 16)));
      return std::string();
    case TokenKind::kUnused:
      return std::string();
  }
  return std::string();
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool remove_special, bool unparse_special) const {
  size_t begin = 0, end = ids.size();
  bool remove_space = add_space_prefix_;
  if (remove_special && add_bos_ && end > begin && ids[begin] == bos_) {
    remove_space = false;
    ++begin;
  }
  if (remove_special && add_eos_ && end > begin && ids[end - 1] == eos_) --end;
  std::string text;
  for (size_t i = begin; i < end; ++i) {
    std::string piece = token_to_piece(ids[i], unparse_special);
    if (remove_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    remove_space = false;
    text += piece;
  }
  return clean_spaces_ ? clean_up_spaces(text) : text;
}

size_t utf8_complete_prefix(std::string_view s) {
  // Look back at most 3 bytes for the lead byte of the last character.
  for (size_t back = 1; back <= 4 && back <= s.size(); ++back) {
    unsigned char c = static_cast<unsigned char>(s[s.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    size_t need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return need > back ? s.size() - back : s.size();
  }
  return s.size();  // only continuation bytes: invalid anyway, nothing to wait for
}

std::string StreamingDecoder::push(int32_t id) {
  pending_ += tokenizer_.token_to_piece(id, special_);
  size_t n = utf8_complete_prefix(pending_);
  std::string out = pending_.substr(0, n);
  pending_.erase(0, n);
  return out;
}

std::string StreamingDecoder::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace onellm
