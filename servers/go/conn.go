// One connection, start to end, on its own goroutine: the model this peer stands for. The code
// blocks as a thread-per-connection server's would (read a request, run it, write the reply), and
// Go's runtime turns every block into a park of the goroutine on the netpoller or a timer, so a
// few threads (GOMAXPROCS) serve every connection.
//
// Replies are written before more is read (docs/limits.md): the reader flushes the pending
// replies before it blocks for input, so a pipeline is answered in order and a client that never
// reads its replies stops being read (its goroutine parks in a write), at a cost of bounded memory.
package main

import (
	"bufio"
	"errors"
	"io"
	"log"
	"net"
	"syscall"
	"time"
	"unsafe"
)

// errOutputLimit: the client owes more than --output-buffer-bytes of replies.
var errOutputLimit = errors.New("output buffer limit reached")

// serveConn serves one admitted connection until the client leaves, a protocol error, a limit or
// a stop closes it. A panic while serving it (the test hook, a bug) closes this connection alone:
// it is logged, counted as failed, and every other connection goes on.
func (s *Server) serveConn(c *net.TCPConn) {
	s.metrics.TaskStarted()
	defer s.metrics.TaskFinished()
	defer s.closeConn(c)
	defer func() {
		if r := recover(); r != nil {
			s.metrics.Failed()
			// Logged even with --quiet: this is a fault in the server, not a client going away.
			log.Printf("switchyard: a connection failed and is closed (%s): %v", c.RemoteAddr(), r)
		}
	}()

	w := bufio.NewWriter(&replyWriter{conn: c, limit: s.cfg.OutputBufferBytes, metrics: s.metrics})
	r := NewReader(bufio.NewReader(flushingReader{c, w}), s.limits)
	sess := &session{srv: s, id: s.nextID.Add(1), w: Writer{w}}
	timed := !s.cfg.NoRequestMetrics
	for {
		args, err := r.ReadCommand()
		if err != nil {
			s.connError(c, w, err)
			return
		}
		var start time.Time
		if timed {
			start = time.Now()
		}
		spec, closeAfter := sess.execute(args)
		if timed {
			s.metrics.Request(spec, time.Since(start))
		}
		if closeAfter {
			w.Flush()
			return
		}
	}
}

// connError ends a connection on a read error: a protocol error is answered, as Redis does.
func (s *Server) connError(c *net.TCPConn, w *bufio.Writer, err error) {
	var protocol ProtocolError
	switch {
	case errors.As(err, &protocol):
		s.metrics.Error(errProtocol)
		Writer{w}.Error(string(protocol))
		w.Flush()
	case errors.Is(err, errQueryBuffer):
		s.metrics.Error(errLimit) // Redis closes such a client without a reply
		s.logf("closing %s: %v (--query-buffer-bytes %d)", c.RemoteAddr(), err,
			s.cfg.QueryBufferBytes)
	case errors.Is(err, errOutputLimit):
		s.logf("closing %s: %v (--output-buffer-bytes %d)", c.RemoteAddr(), err,
			s.cfg.OutputBufferBytes)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	default:
		s.logf("closing %s: %v", c.RemoteAddr(), err)
	}
}

// flushingReader writes the replies pending in w before each read of the connection. A write
// that failed (the client is gone, or over --output-buffer-bytes) fails the read too: bufio keeps
// the error, and Flush returns it even when nothing is pending.
type flushingReader struct {
	conn net.Conn
	w    *bufio.Writer
}

func (f flushingReader) Read(p []byte) (int, error) {
	if err := f.w.Flush(); err != nil {
		return 0, err
	}
	return f.conn.Read(p)
}

// replyWriter writes replies to the connection under --output-buffer-bytes: whenever a write
// would block, what the client has not read yet (the bytes still to write plus the kernel's unsent
// queue) is checked against the limit, and over it the client is dropped rather than waited for.
// Without a limit it is the connection's own Write: the goroutine parks until the client reads.
type replyWriter struct {
	conn    *net.TCPConn
	limit   int64
	metrics *Metrics
}

func (rw *replyWriter) Write(p []byte) (int, error) {
	if rw.limit == 0 {
		return rw.conn.Write(p)
	}
	raw, err := rw.conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	written := 0
	var writeErr error
	// raw.Write calls the function again each time the socket turns writable, while it says false.
	err = raw.Write(func(fd uintptr) bool {
		for written < len(p) {
			n, err := syscall.Write(int(fd), p[written:])
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				if int64(len(p)-written)+unsentBytes(fd) > rw.limit {
					rw.metrics.Error(errLimit)
					writeErr = errOutputLimit
					return true
				}
				return false // park until writable
			case err != nil:
				writeErr = err
				return true
			}
			written += n
		}
		return true
	})
	if writeErr != nil {
		return written, writeErr
	}
	return written, err
}

// unsentBytes is the socket's send queue not yet acknowledged (SIOCOUTQ).
func unsentBytes(fd uintptr) int64 {
	var n int32
	const siocoutq = 0x5411 // TIOCOUTQ
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, siocoutq,
		uintptr(unsafe.Pointer(&n))); e != 0 {
		return 0
	}
	return int64(n)
}
