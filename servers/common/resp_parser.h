// Incremental RESP2 request parser that reproduces Redis 7.0's processInlineBuffer and
// processMultibulkBuffer (networking.c): same framing, same limits, same error texts, so a client
// sees exactly what a real Redis would answer, including for malformed input.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard {

struct ParserLimits {
  // Redis's proto-max-bulk-len: the longest bulk argument.
  std::size_t max_bulk_bytes = 512u << 20;
  // Redis's PROTO_INLINE_MAX_SIZE: the longest unterminated inline request or length line.
  std::size_t max_inline_bytes = 64u << 10;
};

class RespParser {
 public:
  enum class Result { kCommand, kNeedMore, kError };

  explicit RespParser(ParserLimits limits = {});

  // Parses the next request from `input` (the caller's unconsumed bytes). Always sets *consumed to
  // the number of leading bytes of `input` the parser has taken; the caller drops them from its
  // buffer and passes the rest (plus any new bytes) next time. The parser keeps the state of a
  // partially received multibulk request itself, so *consumed may advance in the middle of a
  // command (after each complete length line or complete bulk argument); a bulk argument whose
  // bytes have not all arrived is NOT consumed (it stays in the caller's buffer, and is checked in
  // O(1) by length, never rescanned).
  //  kCommand: *args (cleared first) holds one complete command's arguments, binary safe.
  //  kNeedMore: nothing complete yet; feed more bytes.
  //  kError: error() holds the reply text WITHOUT the leading '-' and trailing CRLF, e.g.
  //          "ERR Protocol error: invalid bulk length". The connection must be closed; further
  //          calls keep returning kError.
  // Empty requests (an empty inline line, "*0\r\n", a negative count like "*-10\r\n") are consumed
  // silently and parsing continues with what follows in the same call.
  Result Parse(std::string_view input, std::size_t* consumed, std::vector<std::string>* args);

  const std::string& error() const;

  // Bytes the parser holds in a partially received command (arguments already consumed from the
  // caller's buffer), so the caller can enforce a query-buffer limit on buffer + this.
  std::size_t buffered_bytes() const { return buffered_bytes_; }

 private:
  // Both take `input` after what is already consumed and add what they take to *consumed. They
  // return kCommand with empty *args for an empty request.
  Result ParseInline(std::string_view input, std::size_t* consumed, std::vector<std::string>* args);
  Result ParseMultibulk(std::string_view input, std::size_t* consumed,
                        std::vector<std::string>* args);
  Result Fail(std::string message);

  ParserLimits limits_;
  // Set once failed; the parser is then dead. A pointer, so a connection that never fails (nearly
  // all) carries 8 bytes for it rather than a string's 32.
  std::unique_ptr<std::string> error_;
  std::size_t args_left_ = 0;            // Redis's multibulklen: 0 between commands
  std::optional<std::size_t> bulk_len_;  // Redis's bulklen: set once a "$N" line is consumed
  std::vector<std::string> pending_;     // a partial multibulk command's arguments, between calls
  std::size_t buffered_bytes_ = 0;       // total size of pending_
};

}  // namespace switchyard
