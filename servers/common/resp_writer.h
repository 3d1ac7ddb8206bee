// RESP2 reply writer: appends one reply to an output buffer. Header-only because every call is a
// few appends that should inline into the command code.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace switchyard::resp {

// "+OK\r\n". `s` must not contain CR or LF (simple strings are one line).
inline void AppendSimple(std::string* out, std::string_view s) {
  out->push_back('+');
  out->append(s);
  out->append("\r\n");
}

// "-ERR message\r\n". `message` includes its code ("ERR ...", "OOM ..."). Newlines would end the
// reply early and desynchronise the client, so they become spaces, as Redis does.
inline void AppendError(std::string* out, std::string_view message) {
  out->push_back('-');
  for (char c : message) out->push_back(c == '\r' || c == '\n' ? ' ' : c);
  out->append("\r\n");
}

inline void AppendInteger(std::string* out, std::int64_t value) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  out->push_back(':');
  out->append(digits, end);
  out->append("\r\n");
}

inline void AppendLength(std::string* out, char prefix, std::size_t length) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, length);
  out->push_back(prefix);
  out->append(digits, end);
  out->append("\r\n");
}

// "$5\r\nhello\r\n": binary safe.
inline void AppendBulk(std::string* out, std::string_view s) {
  AppendLength(out, '$', s.size());
  out->append(s);
  out->append("\r\n");
}

// The RESP2 nil bulk string, GET's reply for a missing key.
inline void AppendNull(std::string* out) { out->append("$-1\r\n"); }

inline void AppendArrayHeader(std::string* out, std::size_t count) {
  AppendLength(out, '*', count);
}

}  // namespace switchyard::resp
