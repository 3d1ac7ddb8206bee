// End to end, the stop and the contract with switchyard serve: SIGTERM under load, a drain past
// --shutdown-timeout, a second signal, a panic in one connection, and the inherited descriptors,
// readiness byte and metrics slot (docs/peers.md). Helpers are in e2e_test.go.

package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Clients pipeline INCRs without pause while SIGTERM arrives: every INCR the server ran had its
// reply delivered (the replies seen are exactly 1..N), and the exit status is 0.
func TestSigtermUnderLoadDeliversEveryOwedReply(t *testing.T) {
	s := start(t, nil, "--quiet")
	const clients, batch = 4, 50
	results := make(chan []int64, clients)
	for i := 0; i < clients; i++ {
		c := dial(t, s.addr())
		go func() {
			var seen []int64
			r := bufio.NewReader(c)
			req := strings.Repeat(multibulk("INCR", "load"), batch)
			for round := 0; round < 100000; round++ {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(c, req); err != nil {
					break
				}
				ok := true
				for j := 0; j < batch && ok; j++ {
					var n int64
					_, err := fmt.Fscanf(r, ":%d\r\n", &n)
					ok = err == nil
					if ok {
						seen = append(seen, n)
					}
				}
				if !ok {
					break
				}
			}
			results <- seen
		}()
	}
	time.Sleep(300 * time.Millisecond)
	began := time.Now()
	if status := s.stop(syscall.SIGTERM, 10*time.Second); status != 0 {
		t.Errorf("exit status %d\n%s", status, s.stderr)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("stopping took %v", took)
	}
	var all []int64
	for i := 0; i < clients; i++ {
		all = append(all, <-results...)
	}
	counted := make(map[int64]bool, len(all))
	for _, n := range all {
		counted[n] = true
	}
	for i := int64(1); i <= int64(len(all)); i++ {
		if !counted[i] {
			t.Fatalf("INCR %d ran but its reply was lost (%d replies)", i, len(all))
		}
	}
}

// A client that never reads holds its connection past --shutdown-timeout: the server exits 1
// after the timeout and not before, and a reply owed to another client is still delivered.
func TestDrainPastTheDeadlineExitsOne(t *testing.T) {
	s := start(t, nil, "--shutdown-timeout", "1", "--quiet")
	if command(t, dial(t, s.addr()), "SET", "big", strings.Repeat("x", 1<<20)) != "+OK\r\n" {
		t.Fatal("SET")
	}
	neverReads := dial(t, s.addr())
	io.WriteString(neverReads, strings.Repeat(multibulk("GET", "big"), 32))
	waiting := dial(t, s.addr())
	time.Sleep(200 * time.Millisecond)
	io.WriteString(waiting, multibulk("SY.WAIT", "300000"))
	time.Sleep(100 * time.Millisecond)
	began := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	if got, closed := readUntilClosed(waiting, 5*time.Second); got != "+OK\r\n" || !closed {
		t.Errorf("the waiting client got %q (closed: %v)", got, closed)
	}
	if status := s.stop(0, 10*time.Second); status != 1 {
		t.Errorf("exit status %d after a drain that timed out", status)
	}
	if took := time.Since(began); took < 900*time.Millisecond || took > 8*time.Second {
		t.Errorf("stopped after %v", took)
	}
	if !strings.Contains(s.stderr.String(), "after 1s; stopping anyway") {
		t.Errorf("stderr: %s", s.stderr)
	}
}

func TestSecondSignalExitsAtOnce(t *testing.T) {
	s := start(t, nil)
	waiting := dial(t, s.addr())
	io.WriteString(waiting, multibulk("SY.WAIT", "30000000"))
	time.Sleep(100 * time.Millisecond)
	s.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	if s.stop(0, 0) != -1 {
		t.Fatal("the first signal should drain, not stop at once")
	}
	if status := s.stop(syscall.SIGTERM, 3*time.Second); status != 128+int(syscall.SIGTERM) {
		t.Errorf("exit status %d", status)
	}
}

// A panic in one connection's goroutine (the test hook makes ECHO panic) closes that connection
// alone, without a reply; it is logged, others are served, and the stop still exits 0.
func TestPanicClosesOnlyItsConnection(t *testing.T) {
	s := start(t, []string{"SWITCHYARD_TEST_FAIL_ECHO=boom"})
	other := dial(t, s.addr())
	if command(t, other, "SET", "k", "v") != "+OK\r\n" {
		t.Fatal("SET")
	}
	failing := dial(t, s.addr())
	if command(t, failing, "PING") != "+PONG\r\n" {
		t.Fatal("PING")
	}
	io.WriteString(failing, multibulk("ECHO", "boom"))
	if got, closed := readUntilClosed(failing, 5*time.Second); got != "" || !closed {
		t.Errorf("the failing connection got %q (closed: %v)", got, closed)
	}
	if got := command(t, other, "GET", "k"); got != "$1\r\n" {
		t.Errorf("another client lost its server: %q", got)
	}
	if got := command(t, dial(t, s.addr()), "ECHO", "fine"); got != "$4\r\n" {
		t.Errorf("a new client: %q", got)
	}
	if status := s.stop(syscall.SIGTERM, 10*time.Second); status != 0 {
		t.Errorf("exit status %d", status)
	}
	if !strings.Contains(s.stderr.String(), "ECHO boom failed") {
		t.Errorf("stderr: %s", s.stderr)
	}
}

// testLayout writes a layout as docs/peers.md describes it: the slot at 4096, fields packed.
func testLayout() (layout, int) {
	l := layout{Version: 1, SlotOffset: 4096, MaxCommands: 48, ErrorKinds: errorKindNames[:],
		Fields: map[string]int64{}}
	for _, spec := range commandTable {
		l.Commands = append(l.Commands, spec.name)
	}
	l.Commands = append(l.Commands, "unknown")
	for b := 1e-6; b <= 10; b *= 10 {
		l.DurationBounds = append(l.DurationBounds, b, 2*b, 5*b)
	}
	l.DurationBounds = l.DurationBounds[:len(l.DurationBounds)-2] // ... 5, 10
	off := int64(0)
	for _, f := range []struct {
		name string
		n    int
	}{{"requests", 48}, {"duration_buckets", 48 * (len(l.DurationBounds) + 1)},
		{"duration_nanos", 48}, {"errors", len(l.ErrorKinds)}, {"accepted", 1},
		{"rejected", 1}, {"failed", 1}, {"active", 1}, {"tasks", 1}, {"user_switches", 1},
		{"gc_cycles", 1}, {"gc_pause_nanos", 1}} {
		l.Fields[f.name] = off
		off += 8 * int64(f.n)
	}
	return l, int(l.SlotOffset + off)
}

// As `switchyard serve` starts a peer: the test binds the socket and passes it as fd 3, a
// readiness pipe as fd 4 and a metrics file as fd 5; the peer ignores SIGINT and stops on
// SIGTERM; the counters move.
func TestInheritedDescriptorsReadinessAndMetricsSlot(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	listenFile, _ := ln.File()
	ln.Close()
	defer listenFile.Close()
	readyRead, readyWrite, _ := os.Pipe()
	defer readyRead.Close()
	l, size := testLayout()
	slot, _ := os.CreateTemp(t.TempDir(), "slot")
	slot.Truncate(int64(size))
	defer slot.Close()
	layoutJSON, _ := json.Marshal(l)

	cmd := exec.Command(binaryPath, "--model", "go", "--listen-fd", "3", "--ready-fd", "4",
		"--metrics-fd", "5", "--metrics-layout", string(layoutJSON), "--threads", "2",
		"--max-clients", "3", "--store-bytes", "1048576", "--shutdown-timeout", "5")
	cmd.ExtraFiles = []*os.File{listenFile, readyWrite, slot}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	readyWrite.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() { cmd.Process.Kill(); <-done }()
	readyRead.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := readyRead.Read(make([]byte, 1)); n != 1 {
		t.Fatalf("no readiness byte: %v; stderr: %s", err, stderr.String())
	}
	addr := ln.Addr().String()
	counter := func(field string, i int) int64 {
		b := make([]byte, 8)
		slot.ReadAt(b, l.SlotOffset+l.Fields[field]+8*int64(i))
		return int64(binary.LittleEndian.Uint64(b))
	}
	ping := indexOf(l.Commands, "ping")

	c := dial(t, addr)
	for i := 0; i < 10; i++ {
		if command(t, c, "PING") != "+PONG\r\n" {
			t.Fatal("PING")
		}
	}
	command(t, c, "NOSUCH")
	for i := 0; i < 20; i++ { // heap enough for the garbage collector to run
		command(t, c, "SET", "big", strings.Repeat("x", 512<<10))
	}
	dial(t, addr)
	dial(t, addr)
	extra := dial(t, addr)
	readUntilClosed(extra, 5*time.Second)
	cmd.Process.Signal(syscall.SIGINT) // ignored: serve relays a stop as SIGTERM
	time.Sleep(700 * time.Millisecond) // a sample of the runtime's figures
	if command(t, c, "PING") != "+PONG\r\n" {
		t.Fatal("SIGINT stopped the peer")
	}

	var buckets int64
	for b := 0; b <= len(l.DurationBounds); b++ {
		buckets += counter("duration_buckets", ping*(len(l.DurationBounds)+1)+b)
	}
	checks := []struct {
		what      string
		got, want int64
	}{
		{"requests[ping]", counter("requests", ping), 11},
		{"duration_buckets[ping]", buckets, 11},
		{"errors[unknown_command]", counter("errors", 1), 1},
		{"requests[unknown]", counter("requests", len(l.Commands)-1), 1},
		{"accepted", counter("accepted", 0), 3},
		{"rejected", counter("rejected", 0), 1},
		{"active", counter("active", 0), 3},
		{"tasks", counter("tasks", 0), 3},
	}
	for _, c := range checks {
		if c.got < c.want-1 || c.got > c.want { // PING's count may lag its reply by one
			t.Errorf("%s = %d, want %d", c.what, c.got, c.want)
		}
	}
	if counter("duration_nanos", ping) <= 0 {
		t.Error("duration_nanos[ping] did not move")
	}
	if counter("user_switches", 0) <= 0 {
		t.Error("user_switches did not move")
	}
	if counter("gc_cycles", 0) <= 0 || counter("gc_pause_nanos", 0) <= 0 {
		t.Errorf("gc_cycles %d, gc_pause_nanos %d", counter("gc_cycles", 0),
			counter("gc_pause_nanos", 0))
	}
	cmd.Process.Signal(syscall.SIGTERM)
	c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v; stderr: %s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Error("no exit after SIGTERM")
	}
	done <- nil // for the deferred wait
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}
