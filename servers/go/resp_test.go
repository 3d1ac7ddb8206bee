// Unit tests of the request reader: Redis's framing and its edge cases (tests/unit/protocol.tcl
// and servers/common/resp_parser_test.cc), fed from strings through bufio, as a connection is.
package main

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

var testLimits = Limits{MaxBulkBytes: 512 << 20, MaxInlineBytes: 64 << 10, QueryBufferBytes: 1 << 30}

// readAll returns the requests in input as space-joined strings, then the error that ended it.
func readAll(input string, limits Limits) ([]string, error) {
	r := NewReader(bufio.NewReader(strings.NewReader(input)), limits)
	var got []string
	for {
		args, err := r.ReadCommand()
		if err != nil {
			return got, err
		}
		parts := make([]string, len(args))
		for i, a := range args {
			parts[i] = string(a)
		}
		got = append(got, strings.Join(parts, "|"))
	}
}

func TestReaderRequests(t *testing.T) {
	cases := []struct {
		input string
		want  []string
	}{
		{"PING\r\n", []string{"PING"}},
		{"PING\n", []string{"PING"}},
		{"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n", []string{"ECHO|hello"}},
		{"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n", []string{"PING", "PING"}},
		// Empty requests are skipped.
		{"\r\n\r\n\nPING\r\n*-10\r\nPING\r\n*0\r\n*1\r\n$4\r\nPING\r\n",
			[]string{"PING", "PING", "PING"}},
		// Inline quoting, as sdssplitargs.
		{"ECHO \"a b\" 'c d' \"\\x41\\n\"\r\n", []string{"ECHO|a b|c d|A\n"}},
		{"SET foo\"bar baz\" x\r\n", []string{"SET|foobar baz|x"}},
		{"ECHO 'it\\'s'\r\n", []string{"ECHO|it's"}},
		// Binary-safe bulk strings, empty ones too; the two bytes after a bulk are not checked.
		{"*2\r\n$4\r\nECHO\r\n$4\r\n\x00\r\n\xff\r\n", []string{"ECHO|\x00\r\n\xff"}},
		{"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", []string{"ECHO|"}},
		{"*1\r\n$4\r\nPINGxx", []string{"PING"}},
		// A length line ends at '\r'; the byte after it is skipped unchecked.
		{"*1\rX$4\rYPING\r\n", []string{"PING"}},
	}
	for _, c := range cases {
		got, err := readAll(c.input, testLimits)
		if err != io.EOF || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %q, %v; want %q", c.input, got, err, c.want)
		}
	}
}

func TestReaderProtocolErrors(t *testing.T) {
	small := testLimits
	small.MaxBulkBytes = 1024
	small.MaxInlineBytes = 1024
	cases := []struct {
		input  string
		limits Limits
		want   string
	}{
		{"*3000000000\r\n", testLimits, "invalid multibulk length"},
		{"*abc\r\n", testLimits, "invalid multibulk length"},
		{"*+1\r\n", testLimits, "invalid multibulk length"},
		{"*01\r\n", testLimits, "invalid multibulk length"},
		{"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", testLimits, "invalid bulk length"},
		{"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n", small, "invalid bulk length"},
		{"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n", testLimits, "invalid bulk length"},
		{"*1\r\n$1025\r\n", small, "invalid bulk length"},
		{"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", testLimits, "expected '$', got 'f'"},
		{"*1\r\n\r\n", testLimits, "expected '$', got ' '"},
		{"set \"\"\"test-key\"\"\" test-value\r\nping\r\n", testLimits,
			"unbalanced quotes in request"},
		{"ECHO \"abc\r\n", testLimits, "unbalanced quotes in request"},
		{strings.Repeat("a", 70000), testLimits, "too big inline request"},
		{strings.Repeat("a", 2000), small, "too big inline request"},
		{"*" + strings.Repeat("1", 70000), testLimits, "too big mbulk count string"},
		{"*1\r\n$" + strings.Repeat("1", 70000), testLimits, "too big bulk count string"},
		// A NUL hides the line end: junk after it is cut off at the limit (protocol desync).
		{"\x00" + strings.Repeat(strings.Repeat("A", 1024)+"\n", 80), testLimits,
			"too big inline request"},
		{"*\x00" + strings.Repeat(strings.Repeat("A", 1024)+"\n", 80), testLimits,
			"too big mbulk count string"},
		{"$\x00" + strings.Repeat(strings.Repeat("A", 1024)+"\n", 80), testLimits,
			"too big inline request"},
	}
	for _, c := range cases {
		_, err := readAll(c.input, c.limits)
		var perr ProtocolError
		if !errors.As(err, &perr) || string(perr) != "ERR Protocol error: "+c.want {
			t.Errorf("%.40q: got %v; want %q", c.input, err, c.want)
		}
	}
	// Good requests before the bad one are read first.
	got, err := readAll("PING\r\n*1\r\n$4\r\nPING\r\n*1\r\nfoo\r\n", testLimits)
	if !reflect.DeepEqual(got, []string{"PING", "PING"}) || err == nil {
		t.Errorf("got %q, %v", got, err)
	}
	// A line longer than the limit that arrived whole is taken, as in Redis.
	if got, err := readAll("ECHO "+strings.Repeat("a", 1500)+"\r\n", small); len(got) != 1 ||
		err != io.EOF {
		t.Errorf("a whole long line: got %d requests, %v", len(got), err)
	}
}

func TestReaderQueryBufferLimit(t *testing.T) {
	limits := testLimits
	limits.QueryBufferBytes = 1 << 20
	arg := "$65536\r\n" + strings.Repeat("q", 65536) + "\r\n"
	_, err := readAll("*100\r\n"+strings.Repeat(arg, 32), limits)
	if err != errQueryBuffer {
		t.Errorf("2 MiB of one request under a 1 MiB limit: got %v", err)
	}
	// One argument that promises more than it sends: memory follows what arrives.
	_, err = readAll("*1\r\n$500000000\r\nabc", testLimits)
	if err != io.EOF {
		t.Errorf("a truncated bulk: got %v", err)
	}
}

func TestParseRedisInt(t *testing.T) {
	good := map[string]int64{"0": 0, "-1": -1, "9223372036854775807": 1<<63 - 1,
		"-9223372036854775808": -1 << 63}
	for s, want := range good {
		if v, ok := parseRedisInt([]byte(s)); !ok || v != want {
			t.Errorf("%q: got %d, %v", s, v, ok)
		}
	}
	for _, s := range []string{"", "-", "+1", " 1", "1 ", "01", "-0", "9223372036854775808",
		"1.0", "0x10"} {
		if _, ok := parseRedisInt([]byte(s)); ok {
			t.Errorf("%q was taken as an integer", s)
		}
	}
}
