// The Go peer of Switchyard (docs/peers.md): the same RESP2 service as the C++ models, served by
// a goroutine per connection on net and bufio, with a sharded map of its own as the store.
// `switchyard serve --model go` starts it with the listening socket, a readiness pipe and the
// metrics slot as inherited descriptors; run alone (--bind, --port) it listens itself.
//
// This file holds the flags, the listening socket, the accept loop with admission
// (--max-clients), and the graceful stop: on SIGTERM stop accepting, stop reading every
// connection (shutdown(SHUT_RD)), deliver the replies owed, exit 0; connections still open after
// --shutdown-timeout are abandoned and the exit status is 1. A second signal exits at once.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config holds the flags, with sizes in bytes.
type Config struct {
	Model                                          string
	Bind                                           string
	Port                                           int
	ListenFD, ReadyFD, MetricsFD                   int
	MetricsLayout                                  string
	Threads, Workers, StackKB, MaxClients          int
	MaxBulkBytes, MaxInlineBytes, QueryBufferBytes int64
	OutputBufferBytes, StoreBytes                  int64
	ShutdownTimeout                                float64
	Quiet, NoRequestMetrics                        bool
}

// size is a flag of bytes that reads like redis.conf: "512", "64k", "1m", "1gb", "256MiB".
type size struct{ p *int64 }

func (s size) String() string {
	if s.p == nil {
		return "0"
	}
	return strconv.FormatInt(*s.p, 10)
}

func (s size) Set(text string) error {
	t := strings.ToLower(strings.TrimSpace(text))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "b"), "i")
	shift := 0
	if t != "" {
		switch t[len(t)-1] {
		case 'k':
			shift = 10
		case 'm':
			shift = 20
		case 'g':
			shift = 30
		}
	}
	if shift != 0 {
		t = t[:len(t)-1]
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)>>shift {
		return fmt.Errorf("not a size: %q", text)
	}
	*s.p = n << shift
	return nil
}

func parseFlags(args []string) (Config, error) {
	cfg := Config{
		Bind: "127.0.0.1", Port: 6380, ListenFD: -1, ReadyFD: -1, MetricsFD: -1,
		Threads: runtime.NumCPU(), MaxClients: 10000, MaxBulkBytes: 512 << 20,
		MaxInlineBytes: 64 << 10, QueryBufferBytes: 1 << 30, StoreBytes: 256 << 20,
		ShutdownTimeout: 10,
	}
	fs := flag.NewFlagSet("switchyard-go", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.Model, "model", "go", "the model name (reported in INFO)")
	fs.StringVar(&cfg.Bind, "bind", cfg.Bind, "address to listen on, run alone")
	fs.IntVar(&cfg.Port, "port", cfg.Port, "port to listen on, run alone (0: a free one)")
	fs.IntVar(&cfg.ListenFD, "listen-fd", -1, "an inherited listening socket to accept on")
	fs.IntVar(&cfg.ReadyFD, "ready-fd", -1, "a pipe to write one byte to once serving")
	fs.IntVar(&cfg.MetricsFD, "metrics-fd", -1, "the shared memory file of the metrics slot")
	fs.StringVar(&cfg.MetricsLayout, "metrics-layout", "", "the slot's layout (JSON)")
	fs.IntVar(&cfg.Threads, "threads", cfg.Threads, "GOMAXPROCS: threads running goroutines")
	fs.IntVar(&cfg.Workers, "workers", 0, "accepted for the common flags; unused")
	fs.IntVar(&cfg.StackKB, "stack-kb", 0, "accepted for the common flags; goroutine stacks grow")
	fs.IntVar(&cfg.MaxClients, "max-clients", cfg.MaxClients, "connections served at once")
	fs.Var(size{&cfg.MaxBulkBytes}, "max-bulk-bytes", "largest bulk string in a request")
	fs.Var(size{&cfg.MaxInlineBytes}, "max-inline-bytes", "longest inline request or length line")
	fs.Var(size{&cfg.QueryBufferBytes}, "query-buffer-bytes", "a request still arriving, at most")
	fs.Var(size{&cfg.OutputBufferBytes}, "output-buffer-bytes", "replies owed, at most (0: none)")
	fs.Var(size{&cfg.StoreBytes}, "store-bytes", "store memory; a write past it gets -OOM")
	fs.Float64Var(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout,
		"seconds a graceful stop waits for the replies owed")
	fs.BoolVar(&cfg.Quiet, "quiet", false, "do not log connection errors")
	fs.BoolVar(&cfg.NoRequestMetrics, "no-request-metrics", false, "neither count nor time requests")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case cfg.Threads < 1 || cfg.Threads > 1024:
		return cfg, errors.New("--threads must be from 1 to 1024")
	case cfg.MaxClients < 1 || cfg.MaxClients > 1<<20:
		return cfg, errors.New("--max-clients must be from 1 to 1048576")
	case cfg.MaxBulkBytes < 1:
		return cfg, errors.New("--max-bulk-bytes must be at least 1")
	case cfg.MaxInlineBytes < 64:
		return cfg, errors.New("--max-inline-bytes must be at least 64")
	case cfg.QueryBufferBytes < cfg.MaxInlineBytes:
		return cfg, fmt.Errorf("--query-buffer-bytes must be at least --max-inline-bytes (%d)",
			cfg.MaxInlineBytes)
	case cfg.StoreBytes < 1<<20:
		return cfg, errors.New("--store-bytes must be at least 1MiB")
	case cfg.ShutdownTimeout < 0 || cfg.ShutdownTimeout > 3600:
		return cfg, errors.New("--shutdown-timeout must be from 0 to 3600")
	case (cfg.MetricsFD >= 0) != (cfg.MetricsLayout != ""):
		return cfg, errors.New("--metrics-fd and --metrics-layout go together")
	}
	return cfg, nil
}

// Server is the service: the store, the metrics slot and the connections open.
type Server struct {
	cfg     Config
	limits  Limits
	store   *Store
	metrics *Metrics // nil when run alone
	nextID  atomic.Uint64

	mu       sync.Mutex
	conns    map[*net.TCPConn]struct{}
	stopping bool
	drained  chan struct{} // closed once stopping and no connection is left
}

func NewServer(cfg Config, metrics *Metrics) *Server {
	return &Server{
		cfg: cfg,
		limits: Limits{MaxBulkBytes: cfg.MaxBulkBytes, MaxInlineBytes: int(cfg.MaxInlineBytes),
			QueryBufferBytes: cfg.QueryBufferBytes},
		store:   NewStore(cfg.StoreBytes),
		metrics: metrics,
		conns:   make(map[*net.TCPConn]struct{}),
		drained: make(chan struct{}),
	}
}

func (s *Server) logf(format string, args ...any) {
	if !s.cfg.Quiet {
		log.Printf("switchyard: "+format, args...)
	}
}

// Serve accepts connections until the listener is closed, a goroutine for each.
func (s *Server) Serve(ln *net.TCPListener) {
	for {
		c, err := ln.AcceptTCP()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of descriptors or memory: back off rather than spin on a ready listener.
			log.Printf("switchyard: accept failed: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		// Go sets TCP_NODELAY on every TCP connection it makes (net.TCPConn.SetNoDelay's
		// default); said again here, as every model says it.
		c.SetNoDelay(true)
		if s.admit(c) {
			go s.serveConn(c)
		}
	}
}

// admit counts a new connection open, or refuses it with Redis's error (over --max-clients) or
// because the server is stopping, and closes it.
func (s *Server) admit(c *net.TCPConn) bool {
	s.mu.Lock()
	reply := ""
	switch {
	case s.stopping:
		reply = "-ERR the server is shutting down\r\n"
	case len(s.conns) >= s.cfg.MaxClients:
		reply = "-ERR max number of clients reached\r\n"
	default:
		s.conns[c] = struct{}{}
	}
	s.mu.Unlock()
	if reply == "" {
		s.metrics.Accepted()
		return true
	}
	s.metrics.Rejected()
	c.SetWriteDeadline(time.Now().Add(time.Second)) // a few bytes: never a long wait
	io.WriteString(c, reply)
	c.Close()
	return false
}

// closeConn ends an admitted connection: stop sending (the client reads end-of-file after the
// last reply), close, and count it closed.
func (s *Server) closeConn(c *net.TCPConn) {
	c.CloseWrite()
	c.Close()
	s.metrics.Closed()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if s.stopping && len(s.conns) == 0 {
		close(s.drained)
	}
}

// StopReading starts the graceful stop: no connection is admitted any more and each open one
// stops reading, so it answers what it has received, reads end-of-file and closes.
func (s *Server) StopReading() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return
	}
	s.stopping = true
	for c := range s.conns {
		c.CloseRead()
	}
	if len(s.conns) == 0 {
		close(s.drained)
	}
}

func (s *Server) openConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// listen returns the listening socket: inherited (--listen-fd) or our own (--bind, --port).
func listen(cfg Config) (*net.TCPListener, error) {
	if cfg.ListenFD < 0 {
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Bind, strconv.Itoa(cfg.Port)))
		if err != nil {
			return nil, fmt.Errorf("cannot listen on %s:%d: %v", cfg.Bind, cfg.Port, err)
		}
		return ln.(*net.TCPListener), nil
	}
	f := os.NewFile(uintptr(cfg.ListenFD), "listener")
	defer f.Close() // FileListener holds a duplicate
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("--listen-fd %d: %v", cfg.ListenFD, err)
	}
	tcp, ok := ln.(*net.TCPListener)
	if !ok {
		ln.Close()
		return nil, fmt.Errorf("--listen-fd %d is not a listening TCP socket", cfg.ListenFD)
	}
	return tcp, nil
}

// signalReady writes the readiness byte to --ready-fd and closes it.
func signalReady(fd int) error {
	f := os.NewFile(uintptr(fd), "ready")
	defer f.Close()
	_, err := f.Write([]byte{1})
	return err
}

func main() {
	log.SetFlags(0)
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "switchyard-go: %v\n", err)
		os.Exit(2)
	}
	os.Exit(run(cfg))
}

func run(cfg Config) int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "switchyard-go: %v\n", err)
		return 1
	}
	runtime.GOMAXPROCS(cfg.Threads)
	// Signals first, so a stop that comes while starting is not lost. Started by switchyard
	// serve (--listen-fd), the peer ignores SIGINT: Ctrl-C reaches serve, which sends SIGTERM.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM)
	if cfg.ListenFD >= 0 {
		signal.Ignore(syscall.SIGINT)
	} else {
		signal.Notify(signals, syscall.SIGINT)
	}

	var metrics *Metrics
	if cfg.MetricsFD >= 0 {
		var err error
		if metrics, err = OpenMetrics(cfg.MetricsFD, cfg.MetricsLayout); err != nil {
			return fail(err)
		}
	}
	ln, err := listen(cfg)
	if err != nil {
		return fail(err)
	}
	srv := NewServer(cfg, metrics)
	stopSampling := make(chan struct{})
	go metrics.SampleRuntime(500*time.Millisecond, stopSampling)
	go srv.Serve(ln)

	if cfg.ReadyFD >= 0 {
		if err := signalReady(cfg.ReadyFD); err != nil {
			return fail(fmt.Errorf("--ready-fd %d: %v", cfg.ReadyFD, err))
		}
	} else {
		fmt.Printf("switchyard ready: model=%s port=%d pid=%d\n", cfg.Model,
			ln.Addr().(*net.TCPAddr).Port, os.Getpid())
	}

	<-signals
	ln.Close()
	srv.StopReading()
	timeout := time.Duration(cfg.ShutdownTimeout * float64(time.Second))
	select {
	case <-srv.drained:
		close(stopSampling)
		return 0
	case <-time.After(timeout):
		log.Printf("switchyard: %d connections still open after %ss; stopping anyway",
			srv.openConns(), strconv.FormatFloat(cfg.ShutdownTimeout, 'g', -1, 64))
		return 1
	case sig := <-signals:
		return 128 + int(sig.(syscall.Signal))
	}
}
