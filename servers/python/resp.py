"""RESP2 for the Python peers: the request parser and the reply writer.

The parser reproduces servers/common/resp_parser.cc, which itself reproduces Redis 7.0's
processInlineBuffer and processMultibulkBuffer: the same framing, limits and error texts, so a
client sees from a Python peer exactly what a C++ model (and a real Redis) would answer, even for
malformed input. Kept as one class over the connection's bytearray so that a pipelined burst is
parsed without copying the unparsed rest.
"""
import re

INT_MAX = 2**31 - 1
MIN_INT64 = -(2**63)
MAX_INT64 = 2**63 - 1

# Redis's string2ll(): "0", or an optional '-' then 1-9 then digits; no '+', no spaces, no
# leading zeros, at most 20 characters, within int64.
_REDIS_INT = re.compile(rb"-?[1-9][0-9]*|0")


def parse_int64(data):
    """The int64 `data` spells in Redis's strict syntax, or None. Used for protocol lengths,
    INCR's stored values and every integer argument, as in the C++ models (redis_int.h)."""
    if len(data) > 20 or _REDIS_INT.fullmatch(data) is None:
        return None
    value = int(data)
    return value if MIN_INT64 <= value <= MAX_INT64 else None


class ProtocolError(Exception):
    """Malformed input: the reply text (without '-' and CRLF). The connection is then closed."""


def _line_end(buf, terminator, start, end):
    """Index of `terminator` in buf[start:end], or -1. Redis scans its NUL-terminated buffer with
    strchr(), so a NUL byte hides everything after it: such a line never ends and only the
    "too big" limit closes the connection (Redis's "protocol desync" tests rely on that)."""
    found = buf.find(terminator, start, end)
    if found >= 0 and buf.find(b"\0", start, found) >= 0:
        return -1
    return found


_BLANKS = b" \t\n\v\f\r"  # C isspace() in the C locale
_TOKEN_ENDS = b" \n\r\t\0"
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX = b"0123456789abcdefABCDEF"


def split_args(line):
    """Redis's sdssplitargs(), the inline request splitter, with its quirks: a quote may open in
    the middle of a token, a bare token ends only at space, \\t, \\r or \\n (so \\v and \\f stay in
    it), and a closing quote must be followed by a blank or the end. None for unbalanced quotes."""
    nul = line.find(b"\0")
    if nul >= 0:
        line = line[:nul]  # the original works on a C string
    if not any(c in line for c in (b'"', b"'", b"\v", b"\f")):
        return line.split()  # the common case: bytes.split() splits exactly there
    n = len(line)

    def at(j):
        return line[j] if j < n else 0

    args = []
    i = 0
    while True:
        while i < n and line[i] in _BLANKS:
            i += 1
        if i == n:
            return args
        arg = bytearray()
        in_double = in_single = False
        while True:
            c = at(i)
            if in_double:
                if c == 92 and at(i + 1) == ord("x") and at(i + 2) in _HEX and at(i + 3) in _HEX:
                    arg.append(int(line[i + 2:i + 4], 16))
                    i += 3
                elif c == 92 and at(i + 1) != 0:
                    i += 1
                    arg.append(_ESCAPES.get(line[i], line[i]))
                elif c == ord('"'):
                    if at(i + 1) != 0 and at(i + 1) not in _BLANKS:
                        return None
                    i += 1
                    break
                elif c == 0:
                    return None
                else:
                    arg.append(c)
            elif in_single:
                if c == 92 and at(i + 1) == ord("'"):
                    arg.append(ord("'"))
                    i += 1
                elif c == ord("'"):
                    if at(i + 1) != 0 and at(i + 1) not in _BLANKS:
                        return None
                    i += 1
                    break
                elif c == 0:
                    return None
                else:
                    arg.append(c)
            elif c in _TOKEN_ENDS:
                if i < n:
                    i += 1
                break
            elif c == ord('"'):
                in_double = True
            elif c == ord("'"):
                in_single = True
            else:
                arg.append(c)
            i += 1
        args.append(bytes(arg))


class Parser:
    """Incremental RESP2 request parser. parse(buf, pos) takes the connection's input buffer and
    where its unparsed part begins, and returns (args, new_pos): args is one complete request's
    arguments (a list of bytes), or None when more input is needed. A multibulk request in
    progress is remembered between calls; a bulk argument whose bytes have not all arrived is
    left in the buffer and checked by length alone, never rescanned. Raises ProtocolError,
    after which the parser must not be used again."""

    def __init__(self, max_bulk_bytes=512 << 20, max_inline_bytes=64 << 10):
        self.max_bulk_bytes = max_bulk_bytes
        self.max_inline_bytes = max_inline_bytes
        self._args_left = 0  # Redis's multibulklen: 0 between requests
        self._bulk_len = -1  # Redis's bulklen: >= 0 once a "$N" line is consumed
        self._pending = []  # arguments of the multibulk request received so far
        self.buffered_bytes = 0  # their total size, for the query-buffer limit

    def parse(self, buf, pos):
        end = len(buf)
        while True:
            if self._args_left == 0:
                if pos == end:
                    return None, pos
                # As in Redis, the first byte decides the request's type.
                if buf[pos] == 42:  # '*'
                    args, pos = self._multibulk(buf, pos, end)
                else:
                    args, pos = self._inline(buf, pos, end)
            else:
                args, pos = self._multibulk(buf, pos, end)
            # An empty request (empty line, "*0", "*-10") is dropped and parsing goes on.
            if args is None or args:
                return args, pos

    def _fail(self, message):
        self._args_left = 0
        self._pending = []
        self.buffered_bytes = 0
        raise ProtocolError("ERR Protocol error: " + message)

    def _inline(self, buf, pos, end):
        newline = _line_end(buf, b"\n", pos, end)
        if newline < 0:
            # Only an unterminated line is limited: a longer line that arrived whole is accepted.
            if end - pos > self.max_inline_bytes:
                self._fail("too big inline request")
            return None, pos
        stop = newline - 1 if newline > pos and buf[newline - 1] == 13 else newline
        args = split_args(bytes(buf[pos:stop]))
        if args is None:
            self._fail("unbalanced quotes in request")
        return args, newline + 1

    def _multibulk(self, buf, pos, end):
        # Count and length lines end at '\r'; Redis then skips one byte without checking that it
        # is '\n', but waits for it to arrive.
        if self._args_left == 0:
            cr = _line_end(buf, b"\r", pos, end)
            if cr < 0:
                if end - pos > self.max_inline_bytes:
                    self._fail("too big mbulk count string")
                return None, pos
            if cr + 2 > end:
                return None, pos
            count = parse_int64(bytes(buf[pos + 1:cr]))
            if count is None or count > INT_MAX:
                self._fail("invalid multibulk length")
            pos = cr + 2
            if count <= 0:
                return [], pos
            self._args_left = count
        pending = self._pending
        while self._args_left:
            if self._bulk_len < 0:
                cr = _line_end(buf, b"\r", pos, end)
                if cr < 0:
                    if end - pos > self.max_inline_bytes:
                        self._fail("too big bulk count string")
                    return None, pos
                if cr + 2 > end:
                    return None, pos
                if buf[pos] != 36:  # '$'
                    # Redis turns CR and LF into spaces to keep the reply on one line.
                    got = buf[pos] if buf[pos] not in (10, 13) else 32
                    self._fail("expected '$', got '%s'" % chr(got))
                length = parse_int64(bytes(buf[pos + 1:cr]))
                if length is None or length < 0 or length > self.max_bulk_bytes:
                    self._fail("invalid bulk length")
                pos = cr + 2
                self._bulk_len = length
            length = self._bulk_len
            if end - pos < length + 2:
                return None, pos
            pending.append(bytes(buf[pos:pos + length]))
            self.buffered_bytes += length
            pos += length + 2
            self._bulk_len = -1
            self._args_left -= 1
        self._pending = []
        self.buffered_bytes = 0
        return pending, pos


# --- replies: each appends one RESP2 reply to a bytearray ---------------------------------------

OK = b"+OK\r\n"
PONG = b"+PONG\r\n"
NIL = b"$-1\r\n"


def simple(out, text):
    out += b"+%s\r\n" % text


def error(out, message):
    """`message` (str or bytes) includes its code ("ERR ...", "OOM ..."). CR and LF would end the
    reply early and desynchronise the client, so they become spaces, as in Redis."""
    if isinstance(message, str):
        message = message.encode("latin-1")
    out += b"-%s\r\n" % message.replace(b"\r", b" ").replace(b"\n", b" ")


def integer(out, value):
    out += b":%d\r\n" % value


def bulk(out, value):
    out += b"$%d\r\n%s\r\n" % (len(value), value)


def bulk_or_nil(out, value):
    if value is None:
        out += NIL
    else:
        out += b"$%d\r\n%s\r\n" % (len(value), value)


def array(out, count):
    out += b"*%d\r\n" % count
