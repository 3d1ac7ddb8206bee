"""Each Python model as a real process on 127.0.0.1, driven by real clients: redis-cli,
redis-benchmark, the project's redis-py suite; started as `switchyard serve` starts a peer
(--listen-fd, --ready-fd, --metrics-fd); and stopped by SIGTERM, in time and past the deadline.
Every wait is bounded; nothing leaves the loopback."""
import fcntl
import importlib.util
import json
import mmap
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import unittest
from pathlib import Path

from metrics import default_layout

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PYTHON = "/usr/bin/python3"
PEER = [PYTHON, str(HERE / "peer.py")]


def multibulk(*args):
    out = b"*%d\r\n" % len(args)
    for arg in args:
        arg = arg if isinstance(arg, bytes) else str(arg).encode()
        out += b"$%d\r\n%s\r\n" % (len(arg), arg)
    return out


class Server:
    """A peer started alone on a free port (--port 0), stopped at the end of the test."""

    def __init__(self, test, model, *flags, env=None):
        self.proc = subprocess.Popen(
            PEER + ["--model", model, "--port", "0", *flags], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=dict(os.environ, **(env or {})))
        test.addCleanup(self.kill)
        line = b""
        deadline = time.monotonic() + 10
        while b"\n" not in line and time.monotonic() < deadline:
            if select.select([self.proc.stdout], [], [], 0.1)[0]:
                data = os.read(self.proc.stdout.fileno(), 4096)
                if not data:
                    break
                line += data
        match = re.search(rb"switchyard ready: model=\w+ port=(\d+)", line)
        test.assertIsNotNone(match, "no ready line: %r %r" % (line, self.stderr()))
        self.port = int(match.group(1))

    def stop(self, signum=signal.SIGTERM, timeout=10):
        if signum:
            self.proc.send_signal(signum)
        return self.proc.wait(timeout)

    def stderr(self):
        if self.proc.poll() is None:
            return b""
        return self.proc.stderr.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc.stdout.close()
        self.proc.stderr.close()


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def read_until_closed(sock, timeout=10):
    """Everything the server sends until it closes; None if it is still open at the timeout."""
    deadline = time.monotonic() + timeout
    received = b""
    try:
        while True:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            data = sock.recv(65536)
            if not data:
                return received
            received += data
    except (socket.timeout, TimeoutError):
        return None
    except ConnectionResetError:
        return received


def read_exactly(sock, size):
    received = b""
    while len(received) < size:
        data = sock.recv(size - len(received))
        if not data:
            break
        received += data
    return received


class EndToEnd:
    model = None

    def setUp(self):
        self.started = time.monotonic()

    def tearDown(self):
        if os.environ.get("SWITCHYARD_TEST_TIMES"):
            print(" %s %.1fs" % (self.id(), time.monotonic() - self.started), file=sys.stderr)

    def start(self, *flags, env=None):
        return Server(self, self.model, *flags, env=env)

    def test_redis_cli(self):
        server = self.start()

        def cli(*args):
            return subprocess.run(["redis-cli", "-p", str(server.port), *args], timeout=20,
                                  capture_output=True, text=True).stdout.strip()

        self.assertEqual(cli("PING"), "PONG")
        self.assertEqual(cli("SET", "k", "hello"), "OK")
        self.assertEqual(cli("GET", "k"), "hello")
        self.assertEqual(cli("INFO"), cli("INFO"))
        self.assertIn("switchyard_model:" + self.model, cli("INFO"))
        self.assertEqual(server.stop(), 0)

    def test_redis_benchmark(self):
        server = self.start()
        result = subprocess.run(
            ["redis-benchmark", "-p", str(server.port), "-q", "-n", "5000", "-t",
             "ping,set,get,incr"], timeout=120, capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        output = result.stdout.replace("\r", "\n")
        rates = re.findall(r"^(\S+): ([\d.]+) requests per second", output, re.MULTILINE)
        self.assertEqual(len(rates), 5, result.stdout)  # PING_INLINE, PING_MBULK, SET, GET, INCR
        print("\n%s redis-benchmark: %s" % (self.model, ", ".join("%s %s/s" % r for r in rates)),
              file=sys.stderr)
        self.assertEqual(server.stop(), 0)

    def test_redis_py_suite(self):
        server = self.start()
        result = subprocess.run(
            [PYTHON, str(REPO / "tests/clients/redis_py_test.py"), "--port", str(server.port)],
            timeout=180, capture_output=True, text=True)
        self.assertIn("29 passed, 0 failed", result.stdout + result.stderr,
                      result.stdout[-3000:] + result.stderr[-3000:])
        self.assertEqual(server.stop(), 0)

    def test_started_as_switchyard_serve_starts_a_peer(self):
        """The test binds, makes the metrics memfd and the readiness pipe, passes them as fds 3,
        4 and 5 with the layout, reads the byte, and finds the counters in the slot."""
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        ready_read, ready_write = os.pipe()
        layout = dict(default_layout(), slot_offset=4096)
        memfd = os.memfd_create("switchyard-peer-test")
        os.ftruncate(memfd, 4096 + layout["size"])
        slot = mmap.mmap(memfd, 0, mmap.MAP_SHARED, mmap.PROT_READ)
        self.addCleanup(slot.close)
        fds = {3: listener.fileno(), 4: ready_write, 5: memfd}

        def child_fds():
            # Out of the way first, so that no source is overwritten before it is copied.
            high = {target: fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100)
                    for target, fd in fds.items()}
            for target, fd in high.items():
                os.dup2(fd, target)  # dup2 clears close-on-exec on the copy

        proc = subprocess.Popen(
            PEER + ["--model", self.model, "--listen-fd", "3", "--ready-fd", "4",
                    "--metrics-fd", "5", "--metrics-layout", json.dumps(layout),
                    "--threads", "2", "--max-clients", "10000", "--max-bulk-bytes", "536870912",
                    "--max-inline-bytes", "65536", "--query-buffer-bytes", "1073741824",
                    "--output-buffer-bytes", "0", "--store-bytes", "268435456",
                    "--shutdown-timeout", "10", "--quiet"],
            preexec_fn=child_fds, close_fds=False, stderr=subprocess.PIPE,
            start_new_session=True)

        def kill():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

        self.addCleanup(kill)
        self.addCleanup(proc.stderr.close)
        os.close(ready_write)
        listener.close()
        os.close(memfd)
        self.assertTrue(select.select([ready_read], [], [], 10)[0], "no readiness byte")
        self.assertEqual(len(os.read(ready_read, 16)), 1)
        self.assertEqual(os.read(ready_read, 16), b"", "the readiness pipe stays open")
        os.close(ready_read)

        with connect(port) as client:
            client.sendall(multibulk("PING") + multibulk("NOSUCH") + multibulk("SY.WAIT", 1000))
            expected = b"+PONG\r\n-ERR unknown command 'NOSUCH', with args beginning with: \r\n" \
                       b"+OK\r\n"
            self.assertEqual(read_exactly(client, len(expected)), expected)

            def word(field, index=0, kind="Q"):
                offset = layout["slot_offset"] + layout["fields"][field] + 8 * index
                return struct.unpack_from(kind, slot, offset)[0]

            commands = layout["commands"]
            self.assertEqual(word("requests", commands.index("ping")), 1)
            self.assertEqual(word("requests", commands.index("unknown")), 1)
            self.assertEqual(word("requests", commands.index("sy.wait")), 1)
            self.assertGreaterEqual(word("duration_nanos", commands.index("sy.wait")), 1_000_000)
            self.assertEqual(word("errors", layout["error_kinds"].index("unknown_command")), 1)
            self.assertEqual(word("accepted"), 1)
            self.assertEqual(word("active", kind="q"), 1)
            self.assertEqual(word("tasks", kind="q"), 1)
            if self.model != "pythreads":
                self.assertGreater(word("user_switches"), 0)
            # Under serve, SIGINT is serve's: the peer ignores it.
            proc.send_signal(signal.SIGINT)
            client.sendall(multibulk("PING"))
            self.assertEqual(read_exactly(client, 7), b"+PONG\r\n")
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(10), 0)
        self.assertEqual(word("active", kind="q"), 0)

    def test_sigterm_delivers_replies_in_flight(self):
        server = self.start()
        clients = [connect(server.port) for _ in range(4)]
        for client in clients:
            client.sendall(multibulk("SY.WAIT", 300000) + multibulk("PING"))
        time.sleep(0.15)  # read by the server, replies not yet due
        server.proc.send_signal(signal.SIGTERM)
        for client in clients:
            self.assertEqual(read_until_closed(client), b"+OK\r\n+PONG\r\n")
            client.close()
        self.assertEqual(server.stop(0), 0)

    def test_drain_past_the_deadline_exits_one(self):
        server = self.start("--shutdown-timeout", "1")
        with connect(server.port) as setup:
            setup.sendall(multibulk("SET", "big", b"x" * (1 << 20)))
            self.assertEqual(read_exactly(setup, 5), b"+OK\r\n")
        never_reads = connect(server.port)
        self.addCleanup(never_reads.close)
        never_reads.sendall(multibulk("GET", "big") * 32)  # 32 MiB owed
        waiting = connect(server.port)
        self.addCleanup(waiting.close)
        time.sleep(0.2)
        waiting.sendall(multibulk("SY.WAIT", 300000))
        time.sleep(0.1)
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        self.assertEqual(read_until_closed(waiting), b"+OK\r\n")
        self.assertEqual(server.stop(0), 1)
        self.assertTrue(0.9 <= time.monotonic() - signalled < 8)
        self.assertIn(b"after 1s; stopping anyway", server.stderr())

    def test_second_signal_exits_at_once(self):
        server = self.start()
        with connect(server.port) as waiting:
            waiting.sendall(multibulk("SY.WAIT", 30_000_000))
            time.sleep(0.1)
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            self.assertIsNone(server.proc.poll(), "the first signal drains")
            self.assertEqual(server.stop(signal.SIGTERM, 3), 128 + signal.SIGTERM)

    def test_exception_closes_only_its_connection(self):
        server = self.start(env={"SWITCHYARD_TEST_FAIL_ECHO": "boom"})
        with connect(server.port) as other, connect(server.port) as failing:
            other.sendall(multibulk("SET", "k", "v"))
            self.assertEqual(read_exactly(other, 5), b"+OK\r\n")
            failing.sendall(multibulk("PING"))
            self.assertEqual(read_exactly(failing, 7), b"+PONG\r\n")
            failing.sendall(multibulk("ECHO", "boom"))
            self.assertEqual(read_until_closed(failing), b"")
            other.sendall(multibulk("GET", "k"))
            self.assertEqual(read_exactly(other, 7), b"$1\r\nv\r\n")
        self.assertEqual(server.stop(), 0)
        self.assertIn(b"ECHO boom failed", server.stderr())

    def test_limits(self):
        server = self.start("--max-clients", "1", "--output-buffer-bytes", "1m")
        with connect(server.port) as first:
            first.sendall(multibulk("PING"))
            self.assertEqual(read_exactly(first, 7), b"+PONG\r\n")
            with connect(server.port) as extra:
                self.assertEqual(read_until_closed(extra),
                                 b"-ERR max number of clients reached\r\n")
            # A client that never reads while owed more than --output-buffer-bytes is dropped.
            first.sendall(multibulk("SET", "big", b"x" * (256 << 10)))
            self.assertEqual(read_exactly(first, 5), b"+OK\r\n")
            first.sendall(multibulk("GET", "big") * 64)
            time.sleep(1.5)
            received = read_until_closed(first, timeout=10)
            self.assertIsNotNone(received, "a client owed 16 MiB was not dropped")
            self.assertLess(len(received), 16 << 20)
        with connect(server.port) as again:  # its slot is free again
            again.sendall(b"PING\r\n")
            self.assertEqual(read_exactly(again, 7), b"+PONG\r\n")
        self.assertEqual(server.stop(), 0)


def _available(module):
    return importlib.util.find_spec(module) is not None


class AsyncioTest(EndToEnd, unittest.TestCase):
    model = "asyncio"


@unittest.skipUnless(_available("uvloop"), "apt-get install python3-uvloop")
class UvloopTest(EndToEnd, unittest.TestCase):
    model = "uvloop"


@unittest.skipUnless(_available("gevent"), "apt-get install python3-gevent")
class GeventTest(EndToEnd, unittest.TestCase):
    model = "gevent"


class PythreadsTest(EndToEnd, unittest.TestCase):
    model = "pythreads"


if __name__ == "__main__":
    unittest.main()
