// Unit tests of the commands and the store: replies and error texts as Redis 7.0 gives them
// (tests/commands_test.cc holds every model to the same), run on a session writing to a buffer.
package main

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"sync"
	"testing"
)

type testSession struct {
	*session
	out *bytes.Buffer
	bw  *bufio.Writer
}

func newTestSession(cfg Config) testSession {
	if cfg.StoreBytes == 0 {
		cfg.StoreBytes = 256 << 20
	}
	if cfg.MaxBulkBytes == 0 {
		cfg.MaxBulkBytes = 512 << 20
	}
	cfg.Model = "go"
	out := &bytes.Buffer{}
	bw := bufio.NewWriter(out)
	return testSession{&session{srv: NewServer(cfg, nil), id: 1, w: Writer{bw}}, out, bw}
}

// do runs one command (arguments separated by spaces) and returns its raw reply.
func (ts testSession) do(args ...string) string {
	bargs := make([][]byte, len(args))
	for i, a := range args {
		bargs[i] = []byte(a)
	}
	ts.execute(bargs)
	ts.bw.Flush()
	reply := ts.out.String()
	ts.out.Reset()
	return reply
}

func TestCommandReplies(t *testing.T) {
	ts := newTestSession(Config{})
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "+PONG\r\n"},
		{[]string{"ping", "x\r\n"}, "$3\r\nx\r\n\r\n"},
		{[]string{"PING", "a", "b"}, "-ERR wrong number of arguments for 'ping' command\r\n"},
		{[]string{"GeT"}, "-ERR wrong number of arguments for 'get' command\r\n"},
		{[]string{"NOSUCH", "a", "b"},
			"-ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' \r\n"},
		{[]string{"SET", "k", "v"}, "+OK\r\n"},
		{[]string{"GET", "k"}, "$1\r\nv\r\n"},
		{[]string{"GET", "nope"}, "$-1\r\n"},
		{[]string{"SET", "k", "w", "NX"}, "$-1\r\n"},
		{[]string{"SET", "k", "w", "XX", "GET"}, "$1\r\nv\r\n"},
		{[]string{"SET", "k", "v", "NX", "XX"}, "-ERR syntax error\r\n"},
		{[]string{"SET", "k", "v", "EX", "10"}, "-ERR SET EX: key expiry (EX, PX, EXAT, PXAT, " +
			"KEEPTTL) is not supported; keys stay until deleted\r\n"},
		{[]string{"SETNX", "k", "x"}, ":0\r\n"},
		{[]string{"GETSET", "k", "v2"}, "$1\r\nw\r\n"},
		{[]string{"GETDEL", "k"}, "$2\r\nv2\r\n"},
		{[]string{"EXISTS", "k", "k"}, ":0\r\n"},
		{[]string{"INCR", "n"}, ":1\r\n"},
		{[]string{"INCRBY", "n", "-5"}, ":-4\r\n"},
		{[]string{"DECRBY", "n", "-9223372036854775808"}, "-ERR decrement would overflow\r\n"},
		{[]string{"SET", "max", "9223372036854775807"}, "+OK\r\n"},
		{[]string{"INCR", "max"}, "-ERR increment or decrement would overflow\r\n"},
		{[]string{"SET", "sp", " 1"}, "+OK\r\n"},
		{[]string{"INCR", "sp"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"SET", "f", "10.5"}, "+OK\r\n"},
		{[]string{"INCRBYFLOAT", "f", "0.1"}, "$4\r\n10.6\r\n"},
		{[]string{"INCRBYFLOAT", "g", "5.0e3"}, "$4\r\n5000\r\n"},
		{[]string{"INCRBYFLOAT", "h", "0x10"}, "$2\r\n16\r\n"},
		{[]string{"INCRBYFLOAT", "f", "1e"}, "-ERR value is not a valid float\r\n"},
		{[]string{"INCRBYFLOAT", "f", "1_0"}, "-ERR value is not a valid float\r\n"},
		{[]string{"INCRBYFLOAT", "f", "inf"}, "-ERR increment would produce NaN or Infinity\r\n"},
		{[]string{"APPEND", "s", "ab"}, ":2\r\n"},
		{[]string{"APPEND", "s", "cd"}, ":4\r\n"},
		{[]string{"STRLEN", "s"}, ":4\r\n"},
		{[]string{"MSET", "a", "1", "b", "2", "a", "3"}, "+OK\r\n"},
		{[]string{"MSET", "a", "1", "b"}, "-ERR wrong number of arguments for 'mset' command\r\n"},
		{[]string{"MGET", "a", "b", "c"}, "*3\r\n$1\r\n3\r\n$1\r\n2\r\n$-1\r\n"},
		{[]string{"MSETNX", "c", "1", "a", "1"}, ":0\r\n"},
		{[]string{"MSETNX", "c", "1", "d", "1"}, ":1\r\n"},
		{[]string{"TYPE", "a"}, "+string\r\n"},
		{[]string{"TYPE", "zz"}, "+none\r\n"},
		{[]string{"DEL", "a", "b", "zz"}, ":2\r\n"},
		{[]string{"UNLINK", "c"}, ":1\r\n"},
		{[]string{"SELECT", "0"}, "+OK\r\n"},
		{[]string{"SELECT", "1"}, "-ERR DB index is out of range\r\n"},
		{[]string{"SELECT", "abc"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"HELLO", "3"}, "-NOPROTO unsupported protocol version\r\n"},
		{[]string{"CLIENT", "SETNAME", "a b"},
			"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"},
		{[]string{"CLIENT", "SETNAME", "me"}, "+OK\r\n"},
		{[]string{"CLIENT", "GETNAME"}, "$2\r\nme\r\n"},
		{[]string{"CLIENT", "ID"}, ":1\r\n"},
		{[]string{"CLIENT", "KILL"}, "-ERR unknown subcommand 'KILL'. Try CLIENT HELP.\r\n"},
		{[]string{"CONFIG", "GET", "save", "nope"}, "*2\r\n$4\r\nsave\r\n$0\r\n\r\n"},
		{[]string{"CONFIG", "SET", "x", "y"}, "-ERR only CONFIG GET is supported\r\n"},
		{[]string{"COMMAND", "COUNT"}, ":34\r\n"},
		{[]string{"COMMAND", "INFO", "nosuch"}, "*1\r\n$-1\r\n"},
		{[]string{"SY.WAIT", "-1"}, "-ERR usec must be an integer from 0 to 60000000\r\n"},
		{[]string{"SY.CPU", "1000"}, "+OK\r\n"},
		{[]string{"SY.BLOCK", "1000"}, "+OK\r\n"},
		{[]string{"SY.WAIT", "1000"}, "+OK\r\n"},
		{[]string{"DBSIZE"}, ":8\r\n"},
		{[]string{"FLUSHALL", "LATER"}, "-ERR syntax error\r\n"},
		{[]string{"FLUSHALL"}, "+OK\r\n"},
		{[]string{"DBSIZE"}, ":0\r\n"},
		{[]string{"QUIT"}, "+OK\r\n"},
	}
	for _, s := range steps {
		if got := ts.do(s.args...); got != s.want {
			t.Errorf("%q: got %q, want %q", s.args, got, s.want)
		}
	}
	if got := ts.do("COMMAND", "INFO", "get"); !strings.HasPrefix(got,
		"*1\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n") {
		t.Errorf("COMMAND INFO get: %q", got)
	}
}

func TestIncrByFloatInLongDouble(t *testing.T) {
	ts := newTestSession(Config{})
	cases := []struct{ value, increment, want string }{
		{"10.5", "0.1", "10.6"}, {"3.0", "0", "3"}, {"-1.5", "1", "-0.5"},
		{"1.5e-5", "0", "0.000015"}, {"0.1", "0.2", "0.3"}, {"2", "1e17", "100000000000000002"},
		{".5", "0", "0.5"}, {"5.", "0", "5"}, {"7", "-7", "0"}, {"1", "1e-20", "1"},
	}
	for _, c := range cases {
		ts.do("SET", "f", c.value)
		ts.do("INCRBYFLOAT", "f", c.increment)
		if got := ts.do("GET", "f"); got != "$"+itoa(len(c.want))+"\r\n"+c.want+"\r\n" {
			t.Errorf("%s + %s: got %q, want %q", c.value, c.increment, got, c.want)
		}
	}
	// 1e308 + 1e308 does not overflow a long double, and is stored in full.
	ts.do("SET", "big", "1e308")
	ts.do("INCRBYFLOAT", "big", "1e308")
	if got := ts.do("GET", "big"); !strings.HasPrefix(got, "$309\r\n1999999999999999999") {
		t.Errorf("1e308 + 1e308: %.40q", got)
	}
}

func TestStoreBytesGivesOOMAndLosesNothing(t *testing.T) {
	ts := newTestSession(Config{StoreBytes: 1 << 20})
	value := strings.Repeat("v", 64<<10)
	stored := 0
	for ; stored < 64; stored++ {
		if reply := ts.do("SET", "key"+itoa(stored), value); reply != "+OK\r\n" {
			if reply != "-OOM command not allowed when used memory > 'store-bytes'.\r\n" {
				t.Fatalf("reply %q", reply)
			}
			break
		}
	}
	if stored == 0 || stored == 64 {
		t.Fatalf("a 1 MiB store took %d values of 64 KiB", stored)
	}
	counters := 0
	for ; counters < 200000 && ts.do("INCR", "c"+itoa(counters)) == ":1\r\n"; counters++ {
	}
	if counters == 200000 {
		t.Fatal("small writes never ran out")
	}
	if got := ts.do("MSET", "x", "1", "y", value); !strings.HasPrefix(got, "-OOM") {
		t.Errorf("MSET past the limit: %q", got)
	}
	if got := ts.do("GET", "x"); got != "$-1\r\n" {
		t.Errorf("MSET wrote part of its pairs: %q", got)
	}
	if got := ts.do("DEL", "key0"); got != ":1\r\n" {
		t.Errorf("DEL: %q", got)
	}
	if got := ts.do("SET", "key0", value); got != "+OK\r\n" {
		t.Errorf("SET after a DEL freed room: %q", got)
	}
}

func TestIncrFromManyGoroutinesLosesNoUpdate(t *testing.T) {
	store := NewStore(1 << 20)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts := testSession{session: &session{srv: &Server{store: store}}, out: &bytes.Buffer{}}
			ts.bw = bufio.NewWriter(ts.out)
			ts.w = Writer{ts.bw}
			for i := 0; i < 1000; i++ {
				ts.do("INCR", "shared")
			}
		}()
	}
	wg.Wait()
	if v, _ := store.Get("shared"); string(v) != "16000" {
		t.Errorf("16 x 1000 INCR: %s", v)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
