// The RESP2 request reader and reply writer. The reader reproduces Redis 7.0's
// processInlineBuffer and processMultibulkBuffer (networking.c), as servers/common/resp_parser.cc
// does for the C++ models: the same framing, limits and error texts, so a client sees what a real
// Redis would answer, malformed input included. It reads from a bufio.Reader and blocks for more
// input the way every Go server does; what it holds of a request still arriving is bounded by
// --query-buffer-bytes.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"
)

// ProtocolError is malformed input: its text (without '-' and CRLF) is the reply, then the
// connection is closed.
type ProtocolError string

func (e ProtocolError) Error() string { return string(e) }

// errQueryBuffer: a request still arriving holds more than --query-buffer-bytes. Redis closes
// such a client without a reply; so do we.
var errQueryBuffer = errors.New("query buffer limit reached")

// Limits of what one request may hold.
type Limits struct {
	MaxBulkBytes     int64 // Redis's proto-max-bulk-len
	MaxInlineBytes   int   // the longest unterminated inline request or length line
	QueryBufferBytes int64 // what a request still arriving may hold
}

// Reader reads requests off one connection.
type Reader struct {
	rd     *bufio.Reader
	limits Limits
	line   []byte // reused for lines longer than the bufio buffer
}

func NewReader(rd *bufio.Reader, limits Limits) *Reader {
	return &Reader{rd: rd, limits: limits}
}

// ReadCommand blocks until one complete request has arrived and returns its arguments (binary
// safe, owned by the caller). Empty requests (an empty inline line, "*0", a negative count) are
// skipped, as Redis does. Errors: a ProtocolError (reply, then close), errQueryBuffer (close
// without a reply), or the connection's read error (io.EOF when the client is done).
func (r *Reader) ReadCommand() ([][]byte, error) {
	for {
		first, err := r.rd.Peek(1)
		if err != nil {
			return nil, err
		}
		var args [][]byte
		// Like Redis, the first byte of a request decides its type.
		if first[0] == '*' {
			args, err = r.readMultibulk()
		} else {
			args, err = r.readInline()
		}
		if err != nil || len(args) > 0 {
			return args, err
		}
	}
}

// readLine returns the bytes up to `end` (not included, copied: valid until the next call) and
// consumes `end` too. Redis finds line ends with strchr() on its NUL-terminated buffer, so a NUL
// byte hides everything after it: such a line never ends, and only the limit closes the
// connection (Redis's "protocol desync" tests). The limit is checked as the bytes arrive, and
// only while the line is unterminated: a longer line that arrived whole is taken, as in Redis.
func (r *Reader) readLine(end byte, tooBig string) ([]byte, error) {
	r.line = r.line[:0]
	hidden := false // a NUL was seen: the line cannot end any more
	seen := 0       // bytes of the line so far
	for {
		buf, _ := r.rd.Peek(r.rd.Buffered()) // what has arrived; never blocks
		if !hidden {
			for i, c := range buf {
				if c == end {
					r.line = append(r.line, buf[:i]...)
					r.rd.Discard(i + 1)
					return r.line, nil
				}
				if c == 0 {
					hidden = true
					break
				}
			}
			if !hidden {
				r.line = append(r.line, buf...)
			}
		}
		seen += len(buf)
		r.rd.Discard(len(buf))
		if seen > r.limits.MaxInlineBytes {
			return nil, ProtocolError("ERR Protocol error: " + tooBig)
		}
		if _, err := r.rd.Peek(1); err != nil { // block until more arrives
			return nil, err
		}
	}
}

func (r *Reader) readInline() ([][]byte, error) {
	line, err := r.readLine('\n', "too big inline request")
	if err != nil {
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte{'\r'})
	args, ok := splitArgs(line)
	if !ok {
		return nil, ProtocolError("ERR Protocol error: unbalanced quotes in request")
	}
	return args, nil
}

// readLengthLine reads a "*N" or "$N" line: it ends at '\r', and Redis then skips one more byte
// without checking that it is '\n' (but waits for it to arrive).
func (r *Reader) readLengthLine(tooBig string) ([]byte, error) {
	line, err := r.readLine('\r', tooBig)
	if err != nil {
		return nil, err
	}
	if _, err := r.rd.ReadByte(); err != nil {
		return nil, err
	}
	return line, nil
}

func (r *Reader) readMultibulk() ([][]byte, error) {
	line, err := r.readLengthLine("too big mbulk count string")
	if err != nil {
		return nil, err
	}
	count, ok := parseRedisInt(line[1:])
	if !ok || count > math.MaxInt32 {
		return nil, ProtocolError("ERR Protocol error: invalid multibulk length")
	}
	if count <= 0 {
		return nil, nil // an empty request
	}
	// The count is the client's word only: grow with the arguments that actually arrive.
	args := make([][]byte, 0, min64(count, 1024))
	var held int64
	for ; count > 0; count-- {
		line, err := r.readLengthLine("too big bulk count string")
		if err != nil {
			return nil, err
		}
		if len(line) == 0 || line[0] != '$' {
			got := byte(' ') // the '\r' of an empty line; Redis turns CR and LF into spaces
			if len(line) > 0 && line[0] != '\n' {
				got = line[0]
			}
			return nil, ProtocolError("ERR Protocol error: expected '$', got '" + string(got) + "'")
		}
		n, ok := parseRedisInt(line[1:])
		if !ok || n < 0 || n > r.limits.MaxBulkBytes {
			return nil, ProtocolError("ERR Protocol error: invalid bulk length")
		}
		arg, err := r.readBulk(n, held)
		if err != nil {
			return nil, err
		}
		held += n
		args = append(args, arg)
	}
	return args, nil
}

// readBulk reads an n-byte argument and the two bytes after it (skipped unchecked, like Redis).
// Memory is taken as the bytes arrive, not as the length line promises, and the request so far
// (`held`, plus what bufio holds) is kept under the query-buffer limit.
func (r *Reader) readBulk(n, held int64) ([]byte, error) {
	const step = 64 << 10
	arg := make([]byte, 0, min64(n, step))
	for int64(len(arg)) < n {
		if held+int64(len(arg))+int64(r.rd.Buffered()) > r.limits.QueryBufferBytes {
			return nil, errQueryBuffer
		}
		if len(arg) == cap(arg) {
			grown := make([]byte, len(arg), min64(n, 2*int64(cap(arg))))
			copy(grown, arg)
			arg = grown
		}
		got, err := r.rd.Read(arg[len(arg):min64(n, int64(cap(arg)))])
		arg = arg[:len(arg)+got]
		if err != nil {
			return nil, err
		}
	}
	if held+n+int64(r.rd.Buffered()) > r.limits.QueryBufferBytes {
		return nil, errQueryBuffer
	}
	if _, err := r.rd.Discard(2); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return arg, nil
}

func min64(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}

// parseRedisInt is Redis's string2ll(): "0", or an optional '-' then 1-9 then digits; no '+',
// no spaces, no leading zeros, at most 20 characters, within int64.
func parseRedisInt(s []byte) (int64, bool) {
	if len(s) == 0 || len(s) > 20 {
		return 0, false
	}
	digits := s
	if s[0] == '-' {
		digits = s[1:]
	}
	if len(digits) == 0 || (digits[0] == '0' && len(s) != 1) {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(string(s), 10, 64)
	return v, err == nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func hexValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}

// splitArgs is Redis's sdssplitargs(), kept close to the original so its quirks survive: a quote
// may open in the middle of a token (foo"bar baz" is one argument), a bare token ends only at
// space, \t, \r or \n, and a closing quote must be followed by a blank or the end. False for
// unbalanced quotes.
func splitArgs(line []byte) ([][]byte, bool) {
	if nul := bytes.IndexByte(line, 0); nul >= 0 {
		line = line[:nul] // the original works on a C string
	}
	n := len(line)
	at := func(j int) byte { // '\0' past the end plays the C string's terminator
		if j < n {
			return line[j]
		}
		return 0
	}
	var args [][]byte
	i := 0
	for {
		for i < n && isSpace(line[i]) {
			i++
		}
		if i == n {
			return args, true
		}
		arg := []byte{}
		inDouble, inSingle := false, false
		for done := false; !done; {
			c := at(i)
			switch {
			case inDouble:
				if c == '\\' && at(i+1) == 'x' && hexValue(at(i+2)) >= 0 && hexValue(at(i+3)) >= 0 {
					arg = append(arg, byte(hexValue(at(i+2))*16+hexValue(at(i+3))))
					i += 3
				} else if c == '\\' && at(i+1) != 0 {
					i++
					arg = append(arg, unescape(line[i]))
				} else if c == '"' {
					if at(i+1) != 0 && !isSpace(at(i+1)) {
						return nil, false
					}
					done = true
				} else if c == 0 {
					return nil, false
				} else {
					arg = append(arg, c)
				}
			case inSingle:
				if c == '\\' && at(i+1) == '\'' {
					arg = append(arg, '\'')
					i++
				} else if c == '\'' {
					if at(i+1) != 0 && !isSpace(at(i+1)) {
						return nil, false
					}
					done = true
				} else if c == 0 {
					return nil, false
				} else {
					arg = append(arg, c)
				}
			case c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == 0:
				done = true
			case c == '"':
				inDouble = true
			case c == '\'':
				inSingle = true
			default:
				arg = append(arg, c)
			}
			if i < n {
				i++
			}
		}
		args = append(args, arg)
	}
}

// Writer appends RESP2 replies to a connection's bufio.Writer. Write errors stick in the
// bufio.Writer and surface at the next Flush.
type Writer struct{ *bufio.Writer }

func (w Writer) Simple(s string) {
	w.WriteByte('+')
	w.WriteString(s)
	w.WriteString("\r\n")
}

// Error writes "-ERR message". Newlines would end the reply early and desynchronise the client,
// so they become spaces, as Redis does.
func (w Writer) Error(message string) {
	w.WriteByte('-')
	for i := 0; i < len(message); i++ {
		c := message[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		w.WriteByte(c)
	}
	w.WriteString("\r\n")
}

func (w Writer) Integer(n int64) { w.header(':', n) }

func (w Writer) Bulk(b []byte) {
	w.header('$', int64(len(b)))
	w.Write(b)
	w.WriteString("\r\n")
}

func (w Writer) BulkString(s string) {
	w.header('$', int64(len(s)))
	w.WriteString(s)
	w.WriteString("\r\n")
}

// Null is the RESP2 nil bulk string, GET's reply for a missing key.
func (w Writer) Null() { w.WriteString("$-1\r\n") }

func (w Writer) Array(n int) { w.header('*', int64(n)) }

func (w Writer) header(prefix byte, n int64) {
	var buf [24]byte
	b := append(buf[:0], prefix)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, '\r', '\n')
	w.Write(b)
}
