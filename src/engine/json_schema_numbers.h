// Private to engine/: GBNF for numbers in a range, as JSON Schema's integer
// and number bounds need them. Every value in the range is accepted in its
// plain decimal form (no exponent, no leading zeros), nothing outside it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace onellm::schema_numbers {

// The largest integer part a bounded number or integer may have: 16 digits,
// as the generic integer rule.
constexpr int64_t kMaxWhole = 9999999999999999;

// Integers lo..hi inclusive (|lo|, |hi| < 10^16).
std::string integer_range(int64_t lo, int64_t hi);

// A decimal bound: sign, integer part and fraction digits (no trailing
// zeros), and whether the bound itself is excluded.
struct DecimalBound {
  bool negative = false;
  int64_t whole = 0;     // < 10^16
  std::string fraction;  // at most 15 digits
  bool exclusive = false;
};

// Parses a bound from its JSON number text ("37.25", "-2", "1e-3"); throws
// Error naming `what` if it needs more than 16 integer or 15 fraction digits.
DecimalBound decimal_bound(double value, bool exclusive, const std::string& what);

// Numbers -?int(.frac{1,15})? between the bounds (either may be absent).
// Returns an empty string when no number satisfies them.
std::string decimal_range(const std::optional<DecimalBound>& lo, const std::optional<DecimalBound>& hi);

}  // namespace onellm::schema_numbers
