// End-to-end tests: the built binary, started alone on a free 127.0.0.1 port or with inherited
// descriptors as `switchyard serve` starts it, driven by real clients (redis-cli,
// redis-benchmark, redis-py) and raw sockets. Every loop is bounded; all traffic is loopback.
// `go test -short` skips them.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var binaryPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "switchyard-go-test")
	if err != nil {
		panic(err)
	}
	binaryPath = filepath.Join(dir, "switchyard-go")
	build := exec.Command("go", "build", "-o", binaryPath, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "go build:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running peer started alone.
type server struct {
	cmd    *exec.Cmd
	port   int
	stderr *bytes.Buffer
	done   chan struct{}
}

func start(t *testing.T, env []string, flags ...string) *server {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	cmd := exec.Command(binaryPath, append([]string{"--port", "0"}, flags...)...)
	cmd.Env = append(os.Environ(), env...)
	s := &server{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = s.stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-s.done })
	line := make(chan string, 1)
	go func() { l, _ := bufio.NewReader(out).ReadString('\n'); line <- l }()
	select {
	case l := <-line:
		if _, err := fmt.Sscanf(l[strings.Index(l, "port="):], "port=%d", &s.port); err != nil {
			t.Fatalf("ready line %q: %v", l, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not get ready")
	}
	return s
}

func (s *server) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// stop sends sig (if any) and returns the exit status, or -1 if it did not exit within limit.
func (s *server) stop(sig syscall.Signal, limit time.Duration) int {
	if sig != 0 {
		s.cmd.Process.Signal(sig)
	}
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		return -1
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func multibulk(args ...string) string {
	s := fmt.Sprintf("*%d\r\n", len(args))
	for _, a := range args {
		s += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
	}
	return s
}

// readUntilClosed reads until the server closes (true) or limit passes (false).
func readUntilClosed(c net.Conn, limit time.Duration) (string, bool) {
	c.SetReadDeadline(time.Now().Add(limit))
	data, err := io.ReadAll(c)
	return string(data), err == nil || !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// command sends one request and reads a one-line reply.
func command(t *testing.T, c net.Conn, args ...string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, multibulk(args...)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	return line
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skip(name, "is not installed")
	}
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func TestRedisCli(t *testing.T) {
	s := start(t, nil)
	p := fmt.Sprint(s.port)
	for _, c := range [][2]string{{"PING", "PONG\n"}, {"SET greeting hello", "OK\n"},
		{"GET greeting", "hello\n"}, {"INCR visits", "1\n"}, {"DEL greeting visits", "2\n"}} {
		if got := runTool(t, "redis-cli", append([]string{"-p", p}, strings.Fields(c[0])...)...); got != c[1] {
			t.Errorf("redis-cli %s: %q, want %q", c[0], got, c[1])
		}
	}
	cmd := exec.Command("redis-cli", "-p", p)
	cmd.Stdin = strings.NewReader("PING\nECHO hi\nINCR c\nINCR c\n")
	if out, _ := cmd.Output(); string(out) != "PONG\nhi\n1\n2\n" {
		t.Errorf("redis-cli from stdin: %q", out)
	}
}

func TestRedisBenchmark(t *testing.T) {
	s := start(t, nil, "--quiet")
	out := runTool(t, "redis-benchmark", "-p", fmt.Sprint(s.port), "-q", "-n", "20000",
		"-t", "ping,set,get,incr")
	for _, test := range []string{"PING_INLINE", "PING_MBULK", "SET", "GET", "INCR"} {
		if !strings.Contains(out, test+": ") {
			t.Errorf("no %s result in:\n%s", test, out)
		}
	}
	if strings.Contains(out, "ERR") || strings.Contains(out, "WARN") {
		t.Errorf("redis-benchmark complained:\n%s", out)
	}
	for _, line := range strings.Split(out, "\r") {
		if l := strings.TrimSpace(line); strings.Contains(l, "requests per second") {
			t.Log(l)
		}
	}
}

// TestRedisPy runs the project's redis-py suite (tests/clients/redis_py_test.py).
func TestRedisPy(t *testing.T) {
	s := start(t, nil, "--quiet")
	script, _ := filepath.Abs("../../tests/clients/redis_py_test.py")
	if _, err := os.Stat(script); err != nil {
		t.Skip("no", script)
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import redis").Run(); err != nil {
		t.Skip("redis-py is not installed")
	}
	out, err := exec.Command("/usr/bin/python3", script, "--port", fmt.Sprint(s.port)).
		CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Log(lines[len(lines)-1])
	if err != nil {
		t.Errorf("redis-py suite: %v\n%s", err, out)
	}
}

func TestProtocolErrorsCloseAfterTheirReply(t *testing.T) {
	s := start(t, nil, "--max-inline-bytes", "1k")
	cases := [][2]string{
		{"PING\r\n*1\r\n$4\r\nPING\r\n*1\r\nfoo\r\nPING\r\n",
			"+PONG\r\n+PONG\r\n-ERR Protocol error: expected '$', got 'f'\r\n"},
		{strings.Repeat("a", 2000), "-ERR Protocol error: too big inline request\r\n"},
		{"*" + strings.Repeat("1", 2000), "-ERR Protocol error: too big mbulk count string\r\n"},
		{"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", ""},
		{"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
			"-ERR wrong number of arguments for 'get' command\r\n"},
	}
	for _, c := range cases {
		conn := dial(t, s.addr())
		io.WriteString(conn, c[0])
		if got, closed := readUntilClosed(conn, 5*time.Second); got != c[1] || !closed {
			t.Errorf("%.30q: got %q (closed: %v), want %q", c[0], got, closed, c[1])
		}
	}
	// Junk after a NUL is cut off within the limit, never buffered for ever.
	conn := dial(t, s.addr())
	io.WriteString(conn, "\x00")
	junk := strings.Repeat("A", 1023) + "\n"
	sent := 0
	for conn.SetWriteDeadline(time.Now().Add(5 * time.Second)); sent < 16<<20; sent += len(junk) {
		if _, err := io.WriteString(conn, junk); err != nil {
			break
		}
	}
	if sent >= 16<<20 {
		t.Error("the server kept taking junk")
	}
}

func TestMaxClients(t *testing.T) {
	s := start(t, nil, "--max-clients", "2")
	first, second := dial(t, s.addr()), dial(t, s.addr())
	if command(t, first, "PING") != "+PONG\r\n" || command(t, second, "PING") != "+PONG\r\n" {
		t.Fatal("the first two clients are not served")
	}
	third := dial(t, s.addr())
	if got, _ := readUntilClosed(third, 5*time.Second); got != "-ERR max number of clients reached\r\n" {
		t.Errorf("the third client got %q", got)
	}
	first.Close()
	served := false
	for attempt := 0; attempt < 100 && !served; attempt++ {
		c := dial(t, s.addr())
		c.SetDeadline(time.Now().Add(time.Second))
		io.WriteString(c, "PING\r\n")
		line, _ := bufio.NewReader(c).ReadString('\n')
		served = line == "+PONG\r\n"
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
	if !served {
		t.Error("a freed place was not given again")
	}
}

func TestQueryBufferLimitDropsWithoutReply(t *testing.T) {
	s := start(t, nil, "--query-buffer-bytes", "1m", "--quiet")
	c := dial(t, s.addr())
	arg := fmt.Sprintf("$%d\r\n%s\r\n", 64<<10, strings.Repeat("q", 64<<10))
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "*100\r\n"+strings.Repeat(arg, 32))
	if got, closed := readUntilClosed(c, 5*time.Second); got != "" || !closed {
		t.Errorf("got %q, closed %v", got, closed)
	}
	if command(t, dial(t, s.addr()), "PING") != "+PONG\r\n" {
		t.Error("others are not served")
	}
}

// floodWithoutReading sends ECHO requests of 16 KiB and reads nothing, until the server stops
// taking them (its kernel buffers full) or closes; it returns how much it sent.
func floodWithoutReading(c net.Conn, total int) int {
	echo := multibulk("ECHO", strings.Repeat("e", 16<<10))
	sent := 0
	for sent < total {
		c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		n, err := io.WriteString(c, echo)
		sent += n
		if err != nil {
			break
		}
	}
	return sent
}

func TestClientThatNeverReadsIsParked(t *testing.T) {
	s := start(t, nil)
	greedy := dial(t, s.addr())
	if sent := floodWithoutReading(greedy, 128<<20); sent >= 64<<20 {
		t.Errorf("the server took %d MiB from a client that reads nothing", sent>>20)
	}
	if command(t, dial(t, s.addr()), "PING") != "+PONG\r\n" {
		t.Error("others are not served")
	}
}

func TestOutputBufferLimitDropsAClientThatNeverReads(t *testing.T) {
	s := start(t, nil, "--output-buffer-bytes", "256k", "--quiet")
	greedy := dial(t, s.addr())
	floodWithoutReading(greedy, 64<<20)
	// Dropped: what reaches us is what was in flight, then the end (or a reset).
	greedy.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, greedy)
	if isTimeout(err) || n > 32<<20 {
		t.Errorf("still connected after %d bytes of replies (%v)", n, err)
	}
	reader := dial(t, s.addr())
	if command(t, reader, "SET", "big", strings.Repeat("r", 1<<20)) != "+OK\r\n" {
		t.Error("a client that reads is not served")
	}
}

func TestTCPNoDelayOnEveryConnection(t *testing.T) {
	srv := NewServer(Config{Model: "go", MaxClients: 10, StoreBytes: 1 << 20,
		MaxBulkBytes: 1 << 20, MaxInlineBytes: 1 << 10, QueryBufferBytes: 1 << 20}, nil)
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go srv.Serve(ln)
	for i := 0; i < 3; i++ {
		if command(t, dial(t, ln.Addr().String()), "PING") != "+PONG\r\n" {
			t.Fatal("not served")
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.conns) != 3 {
		t.Fatalf("%d connections open", len(srv.conns))
	}
	for c := range srv.conns {
		raw, _ := c.SyscallConn()
		var v int
		var gerr error
		raw.Control(func(fd uintptr) {
			v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
		})
		if gerr != nil || v == 0 {
			t.Errorf("TCP_NODELAY is %d (%v) on %v", v, gerr, c.RemoteAddr())
		}
	}
}
