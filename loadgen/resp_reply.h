// The client side of RESP2: writing requests and recognising complete replies in a byte stream.
//
// The load generator needs to know where each reply ends and whether it is an error, never its
// contents, so ParseReply skips bodies by length instead of copying them.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace switchyard::loadgen {

// Appends one request as a RESP multibulk array of bulk strings, binary safe.
void AppendCommand(std::string& out, std::initializer_list<std::string_view> args);

enum class ReplyStatus {
  kComplete,       // one whole reply starts `input`; *consumed is its length
  kNeedMore,       // `input` holds the beginning of a reply only; *consumed is 0
  kProtocolError,  // not RESP2: the connection is beyond repair
};

// Recognises the first reply in `input`. Keeps no state between calls: fed a reply in fragments,
// it answers kNeedMore until the last byte is there, and the caller keeps the unconsumed bytes
// (re-checking a partial reply costs its length lines only, since bulk bodies are skipped by
// length). *is_error is set for an error reply ("-ERR ..."), including one nested in an array.
// `*array_length`, when asked for, is set for a complete reply to its element count if it is an
// array, and to -1 if it is anything else (a nil array included): enough to check an MGET's shape.
ReplyStatus ParseReply(std::string_view input, std::size_t* consumed, bool* is_error,
                       long long* array_length = nullptr);

}  // namespace switchyard::loadgen
