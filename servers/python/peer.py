#!/usr/bin/python3
"""The Python peers' entry point and what every Python model shares around the serving: the
flags, the listening socket (inherited with --listen-fd, or bound alone with --bind/--port), the
readiness byte, the metrics slot, the signals, and the open connections with their graceful stop
(servers/common/open_connections.h). docs/peers.md is the contract this follows.

    /usr/bin/python3 servers/python/peer.py --model asyncio|uvloop|gevent|pythreads [flags]

A model's own file (asyncio_server.py, gevent_server.py, pythreads_server.py) holds only how it
accepts, reads, writes and waits: its serve(config) is called here and returns the exit status.
"""
import argparse
import fcntl
import importlib
import os
import re
import signal
import socket
import struct
import sys
import threading

MODELS = {"asyncio": "asyncio_server", "uvloop": "asyncio_server", "gevent": "gevent_server",
          "pythreads": "pythreads_server"}

MAX_CLIENTS_REPLY = b"-ERR max number of clients reached\r\n"
# To a client accepted in the instant between the stop and the listening socket's close.
SHUTTING_DOWN_REPLY = b"-ERR the server is shutting down\r\n"


def log(message):
    """One line on stderr: the peer's log, as the C++ models write theirs."""
    sys.stderr.write("switchyard: %s\n" % message)
    sys.stderr.flush()


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line and a non-zero exit for a bad flag, as every model does.
        log(message)
        sys.exit(2)


_SIZE = re.compile(r"(\d+)([kmg]?)(i?b?)", re.IGNORECASE)


def size(text):
    """A size in bytes, with an optional unit (64k, 512m, 1g: powers of 1024)."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError("not a size: %r (64, 4k, 1m, 1g)" % text)
    return int(match.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[match.group(2).lower()]


def parse_flags(argv):
    parser = _Parser(prog="peer.py", description="Switchyard's Python peers (docs/peers.md).")
    add = parser.add_argument
    add("--model", required=True, choices=sorted(MODELS))
    add("--listen-fd", type=int, help="an inherited listening socket (switchyard serve)")
    add("--ready-fd", type=int, help="written one byte and closed once serving")
    add("--metrics-fd", type=int, help="the metrics memfd (switchyard serve)")
    add("--metrics-layout", help="the slot's layout, JSON")
    add("--bind", default="127.0.0.1", help="alone: the address to listen on")
    add("--port", type=int, default=6380, help="alone: the port (0 picks a free one)")
    add("--metrics-port", type=int, help="accepted for the C++ models' sake; alone a peer "
                                         "serves no metrics")
    add("--threads", type=int, help="ignored: one event loop (asyncio, uvloop, gevent), or a "
                                    "thread per connection (pythreads)")
    add("--workers", type=int, help="ignored")
    add("--stack-kb", type=int, help="pythreads: each connection thread's stack")
    add("--max-clients", type=int, default=10000)
    add("--max-bulk-bytes", type=size, default=512 << 20)
    add("--max-inline-bytes", type=size, default=64 << 10)
    add("--query-buffer-bytes", type=size, default=1 << 30)
    add("--output-buffer-bytes", type=size, default=0)
    add("--store-bytes", type=size, default=256 << 20)
    add("--shutdown-timeout", type=float, default=10.0)
    add("--quiet", action="store_true", help="do not log connection errors")
    add("--no-request-metrics", dest="request_metrics", action="store_false")
    config = parser.parse_args(argv)
    if (config.metrics_fd is None) != (config.metrics_layout is None):
        parser.error("--metrics-fd and --metrics-layout go together")
    if config.max_clients < 1:
        parser.error("--max-clients must be at least 1")
    if config.shutdown_timeout < 0:
        parser.error("--shutdown-timeout must not be negative")
    if config.stack_kb is not None and config.stack_kb < 32:
        parser.error("--stack-kb must be at least 32")
    return config


def listening_socket(config):
    """The socket to accept on: fd --listen-fd (already listening), or one bound here."""
    if config.listen_fd is not None:
        try:
            return socket.socket(fileno=config.listen_fd)
        except OSError as error:
            raise SystemExit("switchyard: --listen-fd %d: %s" % (config.listen_fd, error))
    try:
        family = socket.getaddrinfo(config.bind, config.port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((config.bind, config.port), family=family, backlog=1024)
    except OSError as error:
        raise SystemExit("switchyard: cannot listen on %s:%d: %s"
                         % (config.bind, config.port, error.strerror or error))


def signal_ready(config, listener):
    """Tells whoever started us that we serve: one byte on --ready-fd, or alone the ready line
    the C++ models print (without a metrics port: alone a peer serves no metrics)."""
    if config.ready_fd is not None:
        os.write(config.ready_fd, b"1")
        os.close(config.ready_fd)
    else:
        print("switchyard ready: model=%s port=%d pid=%d"
              % (config.model, listener.getsockname()[1], os.getpid()), flush=True)


def make_metrics(config, thread_safe=False):
    """The counters: in the slot of --metrics-fd, or private when alone."""
    from metrics import Metrics, ThreadSafeMetrics
    kind = ThreadSafeMetrics if thread_safe else Metrics
    if config.metrics_fd is None:
        metrics = kind.private(config.request_metrics)
    else:
        try:
            metrics = kind.from_fd(config.metrics_fd, config.metrics_layout,
                                   config.request_metrics)
        except (OSError, ValueError, KeyError) as error:
            raise SystemExit("switchyard: cannot use the metrics slot: %s" % error)
    metrics.watch_gc()
    return metrics


def make_service(config, metrics, store_lock=None, blocking_sleep=None):
    from commands import Service
    from store import Store
    store = Store(config.store_bytes, store_lock)
    if blocking_sleep is None:
        import time
        blocking_sleep = time.sleep
    return Service(config, store, metrics, blocking_sleep)


def set_no_delay(sock):
    """TCP_NODELAY on every accepted connection, as Redis does: with Nagle on, a small reply
    waits for the client's delayed ACK (40 ms on Linux) and the tails measure that."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass  # not TCP (a test's socketpair), or already gone


def send_now(fd, data):
    """Best effort, never blocking: for the one-line replies to a refused client."""
    sock = socket.socket(fileno=fd)
    try:
        sock.send(data, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
    except OSError:
        pass
    finally:
        sock.detach()


SIOCOUTQ = 0x5411  # linux/sockios.h: bytes in a socket's send queue not yet sent


def over_output_limit(fd, pending, limit):
    """--output-buffer-bytes, checked when a write would block: the replies a client has not read
    yet are `pending` bytes still ours plus what sits unsent in the kernel's send queue. Always
    False for a limit of 0 (servers/common/net.cc, OverOutputLimit)."""
    if not limit:
        return False
    try:
        unsent = struct.unpack("i", fcntl.ioctl(fd, SIOCOUTQ, b"\0\0\0\0"))[0]
    except OSError:
        unsent = 0
    return pending + unsent > limit


def send_all(data, try_send, wait_writable, fd, limit):
    """Writes all of `data`: try_send(view) writes what the socket takes without blocking (or
    raises BlockingIOError), wait_writable() waits the model's way. False, with the rest unsent,
    when a write would block and the client owes more than --output-buffer-bytes."""
    view = memoryview(data)
    while view:
        try:
            view = view[try_send(view):]
        except BlockingIOError:
            if over_output_limit(fd, len(view), limit):
                return False
            wait_writable()
    return True


def shutdown_fd(fd, how):
    """shutdown(2) on a descriptor the caller does not own as a Python socket."""
    sock = socket.socket(fileno=fd)
    try:
        sock.shutdown(how)
    finally:
        sock.detach()


class OpenConnections:
    """The connections a server holds open, and its graceful stop, for every Python model (the
    counterpart of servers/common/open_connections.h).

    On the first SIGTERM no connection is admitted any more, and every open one stops reading
    (shutdown(SHUT_RD)), so each answers what it has already received, reads end-of-file and
    closes. Connections still open at the drain deadline (--shutdown-timeout) are abandoned and
    the exit status is 1. A real lock, since pythreads calls in from every thread; in the
    single-threaded models it is never contended.
    """

    def __init__(self, config, metrics):
        self.config = config
        self.metrics = metrics
        self._lock = threading.Lock()
        self._open = {}  # connection key -> its shutdown(SHUT_RD)
        self.stopping = False
        self._drained = None

    def admit(self, key, fd, shutdown_read):
        """An accepted connection: True when admitted (counted active until close(key)). False
        over --max-clients or while stopping: the client was sent Redis's error, counted
        rejected, and the caller closes the socket without close(key)."""
        with self._lock:
            if not self.stopping and len(self._open) < self.config.max_clients:
                self._open[key] = shutdown_read
                self.metrics.accepted()
                return True
            reply = SHUTTING_DOWN_REPLY if self.stopping else MAX_CLIENTS_REPLY
            self.metrics.rejected()
        send_now(fd, reply)
        return False

    def close(self, key):
        """An admitted connection has closed (its socket is the model's to close)."""
        with self._lock:
            if self._open.pop(key, None) is None:
                return
            self.metrics.closed()
            drained = self._drained if self.stopping and not self._open else None
            if drained:
                self._drained = None
        if drained:
            drained()

    def failed(self, fd, error):
        """An exception escaped the handling of one connection: counted and logged (even with
        --quiet: a fault in the server, not a client going away). The model closes it alone."""
        self.metrics.failed()
        log("a connection failed and is closed (descriptor %s): %s" % (fd, error))

    def stop_reading(self, drained):
        """Starts the graceful stop. `drained` runs once, when the last connection closes (or
        now, if none is open): the model wakes its waiting from it."""
        with self._lock:
            if self.stopping:
                return
            self.stopping = True
            for shutdown_read in self._open.values():
                try:
                    shutdown_read()
                except OSError:
                    pass  # closing already
                except Exception as error:  # a bug here must not stop the stop
                    log("cannot stop reading a connection: %r" % error)
            if self._open:
                self._drained = drained
                return
        drained()

    def open_count(self):
        with self._lock:
            return len(self._open)

    def finish(self):
        """The stop's exit status once the model has waited: 0 when every connection closed in
        time, else 1 after saying how many were left."""
        left = self.open_count()
        if left == 0:
            return 0
        log("%d connections still open after %gs; stopping anyway"
            % (left, self.config.shutdown_timeout))
        return 1


class StopSignals:
    """SIGTERM (and SIGINT when running alone) starts the graceful stop; a second one exits at
    once with 128 + the signal, as every model does. Under `switchyard serve` (--listen-fd) SIGINT
    is ignored: Ctrl-C reaches serve, which passes the stop on as SIGTERM."""

    def __init__(self, config, start_stop):
        self._start_stop = start_stop
        self._received = False
        self.signals = [signal.SIGTERM]
        if config.listen_fd is None:
            self.signals.append(signal.SIGINT)
        else:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    def __call__(self, signum=signal.SIGTERM, *_):
        if self._received:
            os._exit(128 + signum)
        self._received = True
        self._start_stop()


def exit_abandoning(status):
    """Ends the process now with `status`, leaving connections still open: their threads,
    greenlets or coroutines still run, so there is no orderly return."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def main(argv=None):
    config = parse_flags(sys.argv[1:] if argv is None else argv)
    module = importlib.import_module(MODELS[config.model])
    return module.serve(config)


if __name__ == "__main__":
    sys.exit(main())
