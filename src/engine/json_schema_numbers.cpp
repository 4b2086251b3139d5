// Numeric ranges as GBNF. Integers: one alternative per numeral length, each
// split digit by digit at the bounds. Decimals: the integer part decides
// (strictly inside the bounds: any fraction), and at a bound's integer part
// the fraction digits are constrained digit by digit against the bound's.
#include "engine/json_schema_numbers.h"

#include <charconv>
#include <vector>

#include "base/error.h"
#include "engine/json_schema.h"

namespace onellm::schema_numbers {
namespace {

constexpr int kMaxFraction = 15;                 // as the generic number rule

std::string join(const std::vector<std::string>& alts) {
  std::string out;
  for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : "") + alts[i];
  return out;
}

std::string digits_range_same_length(const std::string& lo, const std::string& hi) {
  if (lo == hi) return gbnf_literal(lo);
  const size_t rest = lo.size() - 1;
  if (lo.find_first_not_of('0') == std::string::npos && hi.find_first_not_of('9') == std::string::npos)
    return "[0-9]{" + std::to_string(lo.size()) + "}";
  if (lo[0] == hi[0]) return gbnf_literal(lo.substr(0, 1)) + " (" + digits_range_same_length(lo.substr(1), hi.substr(1)) + ")";
  if (rest == 0) return std::string("[") + lo[0] + "-" + hi[0] + "]";
  std::vector<std::string> alts;
  alts.push_back(gbnf_literal(lo.substr(0, 1)) + " (" + digits_range_same_length(lo.substr(1), std::string(rest, '9')) + ")");
  if (hi[0] - lo[0] > 1)
    alts.push_back(std::string("[") + char(lo[0] + 1) + "-" + char(hi[0] - 1) + "] [0-9]{" + std::to_string(rest) + "}");
  alts.push_back(gbnf_literal(hi.substr(0, 1)) + " (" + digits_range_same_length(std::string(rest, '0'), hi.substr(1)) + ")");
  return join(alts);
}

// Decimal numerals without leading zeros for every integer in [lo, hi], lo >= 0.
std::string nonnegative_range(int64_t lo, int64_t hi) {
  std::string a = std::to_string(lo), b = std::to_string(hi), out;
  for (size_t len = a.size(); len <= b.size(); ++len) {
    std::string from = len == a.size() ? a : "1" + std::string(len - 1, '0');
    std::string to = len == b.size() ? b : std::string(len, '9');
    out += (out.empty() ? "" : " | ") + std::string("(") + digits_range_same_length(from, to) + ")";
  }
  return out;
}

bool all_zero(const std::string& digits) { return digits.find_first_not_of('0') == std::string::npos; }

// A fraction bound: its digits (0.digits) and whether it is excluded.
struct FractionBound {
  std::string digits;
  bool strict = false;
};

// The fraction digit strings D (0 to `room` digits) with lo <= 0.D <= hi
// (< with strict; a missing bound does not constrain): whether the empty D
// (no fraction) qualifies, and GBNF for the non-empty ones ("" if none).
struct Fractions {
  bool empty_ok = false;
  std::string nonempty;
};

Fractions fractions(const FractionBound* lo, const FractionBound* hi, int room) {
  if (lo != nullptr && !lo->strict && all_zero(lo->digits)) lo = nullptr;  // D >= 0 always holds
  Fractions out;
  out.empty_ok = (lo == nullptr || (all_zero(lo->digits) && !lo->strict)) &&
                 (hi == nullptr || !all_zero(hi->digits) || !hi->strict);
  if (room == 0) return out;
  auto first = [](const FractionBound* b) { return b->digits.empty() ? '0' : b->digits[0]; };
  auto rest = [](const FractionBound* b) {
    return FractionBound{b->digits.empty() ? "" : b->digits.substr(1), b->strict};
  };
  const char lo_c = lo != nullptr ? first(lo) : '0', hi_c = hi != nullptr ? first(hi) : '9';
  const std::string any_tail = room > 1 ? " [0-9]{0," + std::to_string(room - 1) + "}" : "";
  std::vector<std::string> alts;
  // Digits strictly between the bounds' digits: any tail.
  const char free_lo = lo != nullptr ? static_cast<char>(lo_c + 1) : '0';
  const char free_hi = hi != nullptr ? static_cast<char>(hi_c - 1) : '9';
  if (free_lo <= free_hi)
    alts.push_back((free_lo == free_hi ? gbnf_literal(std::string(1, free_lo))
                                       : std::string("[") + free_lo + "-" + free_hi + "]") + any_tail);
  // A bound's own digit: the tail is constrained by the rest of that bound
  // (both bounds when their digits agree).
  std::vector<char> own;
  if (lo != nullptr) own.push_back(lo_c);
  if (hi != nullptr && !(lo != nullptr && hi_c == lo_c)) own.push_back(hi_c);
  for (char c : own) {
    if ((lo != nullptr && c < lo_c) || (hi != nullptr && c > hi_c)) continue;
    const bool keep_lo = lo != nullptr && c == lo_c, keep_hi = hi != nullptr && c == hi_c;
    const FractionBound lo_rest = keep_lo ? rest(lo) : FractionBound{}, hi_rest = keep_hi ? rest(hi) : FractionBound{};
    const Fractions tail = fractions(keep_lo ? &lo_rest : nullptr, keep_hi ? &hi_rest : nullptr, room - 1);
    if (tail.nonempty.empty() && !tail.empty_ok) continue;
    std::string alt = gbnf_literal(std::string(1, c));
    if (!tail.nonempty.empty()) alt += " ( " + tail.nonempty + " )" + (tail.empty_ok ? "?" : "");
    alts.push_back(alt);
  }
  out.nonempty = join(alts);
  return out;
}

// A nonnegative magnitude bound.
struct Magnitude {
  int64_t whole = 0;
  FractionBound fraction;
};

// Nonnegative numbers int(.frac)? with lo <= x <= hi (hi may be null).
std::string nonnegative_decimals(const Magnitude& lo, const Magnitude* hi) {
  if (hi != nullptr && hi->whole < lo.whole) return "";
  auto with = [](int64_t whole, const Fractions& f) -> std::string {
    if (f.nonempty.empty() && !f.empty_ok) return "";
    std::string out = gbnf_literal(std::to_string(whole));
    if (!f.nonempty.empty()) out += " ( \".\" ( " + f.nonempty + " ) )" + (f.empty_ok ? "?" : "");
    return out;
  };
  std::vector<std::string> alts;
  if (hi != nullptr && hi->whole == lo.whole) {
    alts.push_back(with(lo.whole, fractions(&lo.fraction, &hi->fraction, kMaxFraction)));
  } else {
    alts.push_back(with(lo.whole, fractions(&lo.fraction, nullptr, kMaxFraction)));
    const int64_t mid_lo = lo.whole + 1, mid_hi = hi != nullptr ? hi->whole - 1 : kMaxWhole;
    if (mid_lo <= mid_hi)
      alts.push_back("( " + nonnegative_range(mid_lo, mid_hi) + " ) ( \".\" [0-9]{1," + std::to_string(kMaxFraction) + "} )?");
    if (hi != nullptr) alts.push_back(with(hi->whole, fractions(nullptr, &hi->fraction, kMaxFraction)));
  }
  std::vector<std::string> nonempty;
  for (std::string& a : alts)
    if (!a.empty()) nonempty.push_back("( " + a + " )");
  return join(nonempty);
}

}  // namespace

std::string integer_range(int64_t lo, int64_t hi) {
  std::vector<std::string> alts;
  if (lo < 0) alts.push_back("\"-\" (" + nonnegative_range(hi < 0 ? -hi : 1, -lo) + ")");
  if (hi >= 0) alts.push_back("(" + nonnegative_range(std::max<int64_t>(lo, 0), hi) + ")");
  return join(alts);
}

DecimalBound decimal_bound(double value, bool exclusive, const std::string& what) {
  char buf[512];
  // Shortest fixed-point text that reads back as the same double.
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed);
  if (ec != std::errc()) throw Error(what + " cannot be written as a decimal");
  std::string text(buf, end);
  DecimalBound b;
  b.exclusive = exclusive;
  if (!text.empty() && text[0] == '-') {
    b.negative = true;
    text.erase(0, 1);
  }
  const size_t dot = text.find('.');
  const std::string whole = text.substr(0, dot);
  b.fraction = dot == std::string::npos ? "" : text.substr(dot + 1);
  while (!b.fraction.empty() && b.fraction.back() == '0') b.fraction.pop_back();
  if (whole.size() > 16) throw Error(what + " beyond 16 integer digits is not supported");
  if (b.fraction.size() > static_cast<size_t>(kMaxFraction))
    throw Error(what + " with more than 15 decimals is not supported");
  b.whole = std::stoll(whole);
  if (b.whole == 0 && b.fraction.empty()) b.negative = false;  // -0 is 0
  return b;
}

std::string decimal_range(const std::optional<DecimalBound>& lo, const std::optional<DecimalBound>& hi) {
  auto magnitude = [](const DecimalBound& b) { return Magnitude{b.whole, FractionBound{b.fraction, b.exclusive}}; };
  std::vector<std::string> alts;
  // x >= 0: from max(lo, 0) up to hi (none if hi is negative).
  if (!hi || !hi->negative) {
    const Magnitude from = lo && !lo->negative ? magnitude(*lo) : Magnitude{};
    const Magnitude to = hi ? magnitude(*hi) : Magnitude{};
    const std::string body = nonnegative_decimals(from, hi ? &to : nullptr);
    if (!body.empty()) alts.push_back(body);
  }
  // x < 0 as "-" y: y > max(-hi, 0) (>= -hi if hi is negative and included),
  // y <= -lo; "-0" is never produced.
  if (!lo || lo->negative) {
    const Magnitude from = hi && hi->negative ? magnitude(*hi) : Magnitude{0, FractionBound{"", true}};
    const Magnitude to = lo ? magnitude(*lo) : Magnitude{};
    const std::string body = nonnegative_decimals(from, lo ? &to : nullptr);
    if (!body.empty()) alts.push_back("\"-\" ( " + body + " )");
  }
  return join(alts);
}

}  // namespace onellm::schema_numbers
