// Redis's string2ll(): the one definition of "an integer" shared by the protocol (lengths), the
// store (INCR) and the commands (SY.* arguments).
#pragma once

#include <charconv>
#include <cstdint>
#include <string_view>

namespace switchyard {

// "0", or an optional '-' then 1-9 then digits; no '+', no spaces, no leading zeros, at most 20
// characters, within int64.
inline bool ParseRedisInt64(std::string_view s, std::int64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  const std::size_t first_digit = s[0] == '-' ? 1 : 0;
  if (first_digit == s.size()) return false;
  if (s[first_digit] == '0' && s.size() != 1) return false;  // a leading zero, or "-0"
  // from_chars rejects '+', spaces and out-of-range values; check it consumed everything.
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace switchyard
