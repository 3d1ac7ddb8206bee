"""Starting a switchyard server, checking it answers correctly, scraping its metrics, stopping it."""

import contextlib
import os
import re
import resource
import select
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from . import loadgen


class ServerError(RuntimeError):
    pass


def _raise_fd_limit(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(wanted, soft), max(wanted, hard)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class _ServerProcess:
    """What every server under test shares: SIGTERM, a bounded wait, then SIGKILL."""

    process: subprocess.Popen
    signalled = False

    def stop_soon(self):
        """SIGTERM without waiting for the exit. Our servers take about two seconds to exit after
        their drain (the metrics endpoint's web server polls for its stop flag), idle meanwhile:
        compare lets that overlap the next run instead of waiting for it, then stop()s each."""
        if self.process.poll() is None and not self.signalled:
            self.process.send_signal(signal.SIGTERM)
            self.signalled = True

    def stop(self):
        if self.process.poll() is None:
            if not self.signalled:  # a second SIGTERM would make it exit at once, not drain
                self.process.send_signal(signal.SIGTERM)
                self.signalled = True
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe:
                pipe.close()
        return self.process.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Server(_ServerProcess):
    """A `switchyard serve` process on free loopback ports, optionally pinned with taskset."""

    def __init__(self, binary, model, cpus=None, extra_flags=(), fd_limit=65536):
        command = [binary, "serve", "--model", model, "--port", "0", "--metrics-port", "0",
                   "--quiet", *extra_flags]
        if cpus:
            command = ["taskset", "-c", cpus, *command]
        self.model = model
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: _raise_fd_limit(fd_limit))
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        line = self.process.stdout.readline() if ready else ""
        match = re.search(r"port=(\d+) metrics_port=(\d+)", line)
        if not match:
            self.process.kill()
            _, err = self.process.communicate(timeout=10)
            raise ServerError(f"{model} did not start: {(line + err).strip()[:300]}")
        self.port, self.metrics_port = int(match.group(1)), int(match.group(2))

    def scrape(self):
        """Every sample of /metrics as {'name{labels}': value}."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    samples[name] = float(value)
                except ValueError:
                    pass
        return samples



def _command(*args):
    out = b"*%d\r\n" % len(args)
    for arg in args:
        arg = arg if isinstance(arg, bytes) else str(arg).encode()
        out += b"$%d\r\n%s\r\n" % (len(arg), arg)
    return out


def verify(port):
    """Checks a RESP server answers the basic commands correctly before anything is measured.
    Returns None when it does, else what went wrong."""
    checks = [
        (_command("PING"), b"+PONG\r\n"),
        (_command("SET", "compare:verify", "v\r\n\x00"), b"+OK\r\n"),
        (_command("GET", "compare:verify"), b"$4\r\nv\r\n\x00\r\n"),
        (_command("DEL", "compare:verify:n"), None),
        (_command("INCR", "compare:verify:n"), b":1\r\n"),
        (_command("INCR", "compare:verify:n"), b":2\r\n"),
        (_command("ECHO", "x" * 1000), b"$1000\r\n" + b"x" * 1000 + b"\r\n"),
        (_command("NOSUCHCOMMAND"), b"-ERR unknown command"),
    ]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            for request, expected in checks:
                conn.sendall(request)
                reply = conn.recv(65536)
                while not reply.endswith(b"\r\n"):
                    reply += conn.recv(65536)
                if expected is not None and not reply.startswith(expected):
                    return f"{request!r} answered {reply[:80]!r}, expected {expected[:80]!r}"
    except OSError as e:
        return f"connection failed: {e}"
    return None


# Every kind of call kv.proto has, simulated work included (0 µs, so verifying stays quick).
GRPC_VERIFY_MIX = ("set:1,get:1,incr:1,incrby:1,mget:2:1,mset:2:1,echo:1,ping:1,sy.cpu:0:1,"
                   "sy.wait:0:1,sy.block:0:1")
GRPC_VERIFY_CALLS = 400


def verify_grpc(binary, server):
    """Checks a kv.proto server before anything is measured: the load generator's gRPC mode sends
    GRPC_VERIFY_CALLS calls of every kind, each must be answered without an error status, and the
    server must count every one of them. Returns None when it does, else what went wrong."""
    before = server.scrape()
    with tempfile.TemporaryDirectory() as tmp:
        flags = ["--requests", GRPC_VERIFY_CALLS, "--warmup", "0", "--connections", "2", "--mix",
                 GRPC_VERIFY_MIX]
        try:
            result = loadgen.run(binary, server.port, flags, Path(tmp) / "verify.json",
                                 protocol="grpc", timeout=60)
        except subprocess.TimeoutExpired:
            return "load --protocol grpc did not finish in 60 s"
        except loadgen.LoadError as e:
            return f"load --protocol grpc failed: {e}"
    answered, errors, failed = (result[k] for k in ("requests", "errors", "failed"))
    if (answered, errors, failed) != (GRPC_VERIFY_CALLS, 0, 0):
        return (f"{GRPC_VERIFY_CALLS} calls: {answered} answered, {errors} errors, "
                f"{failed} failed")
    after = server.scrape()
    served = sum(v - before.get(k, 0) for k, v in after.items()
                 if k.startswith("switchyard_requests_total"))
    if served != GRPC_VERIFY_CALLS:
        return f"the server counted {served:.0f} of {GRPC_VERIFY_CALLS} calls"
    return None


@contextlib.contextmanager
def hold_idle_grpc_connections(binary, port, count, cpus=None, timeout=30.0):
    """Holds `count` idle gRPC connections to `port` and yields (opened, answered) while they are
    open. The load generator opens them (`load --protocol grpc --hold-idle`): each a channel of its
    own, READY (TCP connected, HTTP/2 preface and settings exchanged), that made one call (an empty
    Echo, kv.proto's PING), then idle until we are done.

    Not plain sockets, as for RESP (hold_idle_connections): a RESP server allocates its per-client
    state on accept, but a TCP connection that never speaks costs a gRPC server only the kernel's
    socket and a pending handshake. gRPC builds its transport (HTTP/2 state, flow-control windows,
    read buffers, its endpoint) once the client's preface arrives, and per-call state on the first
    call, so only a real client that has made a call shows what a connection costs it."""
    with tempfile.TemporaryDirectory() as tmp:
        flags = ["--connections", count, "--requests", count, "--warmup", "0", "--mix", "ping",
                 "--hold-idle", "600s"]
        process = loadgen.start(binary, port, flags, protocol="grpc",
                                json_path=Path(tmp) / "hold.json", cpus=cpus,
                                stderr=subprocess.PIPE)
        try:
            line, deadline = "", time.monotonic() + timeout
            while "holding" not in line and time.monotonic() < deadline:
                ready, _, _ = select.select([process.stderr], [], [],
                                            max(0.0, deadline - time.monotonic()))
                line = process.stderr.readline() if ready else ""
                if ready and not line:
                    break  # it exited
            match = re.search(r"holding (\d+) idle connections, (\d+) calls answered", line)
            if not match:
                process.kill()
                _, err = process.communicate(timeout=10)
                raise RuntimeError(f"could not hold {count} gRPC connections: "
                                   f"{(line + err).strip()[-300:]}")
            yield int(match.group(1)), int(match.group(2))
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # ends the hold: the channels close
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            process.stderr.close()


def hold_idle_connections(port, count, timeout=10.0, quiet=1.0):
    """Opens `count` connections, sends one PING on each and waits for the PONGs, until all came,
    `timeout` passed, or none came for `quiet` seconds. Returns the open sockets (the caller closes
    them) and how many were answered: a model that cannot serve them all (prefork beyond its
    workers) leaves the rest waiting in the listen backlog, and they would wait for ever."""
    _raise_fd_limit(count + 256)
    sockets, answered = [], 0
    try:
        for _ in range(count):
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
            conn.setblocking(False)
            conn.send(b"PING\r\n")
            sockets.append(conn)
    except OSError:
        pass  # refused or out of descriptors: report what was opened
    waiting = {conn.fileno(): conn for conn in sockets}
    poller = select.poll()
    for fd in waiting:
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout
    last_answer = time.monotonic()
    while waiting and time.monotonic() < min(deadline, last_answer + quiet):
        for fd, _ in poller.poll(100):
            last_answer = time.monotonic()
            conn = waiting.pop(fd, None)
            poller.unregister(fd)
            try:
                if conn is not None and conn.recv(64).startswith(b"+PONG"):
                    answered += 1
            except OSError:
                pass
    return sockets, answered


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_stats(pid):
    """CPU, switches and memory of a process (all its threads) from /proc, in the names of
    switchyard's own metrics, so a reference server is measured the same way."""
    ticks = os.sysconf("SC_CLK_TCK")
    voluntary = involuntary = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/status") as status:
            for line in status:
                if line.startswith("voluntary_ctxt_switches"):
                    voluntary += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches"):
                    involuntary += int(line.split()[1])
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    memory = {}
    with open(f"/proc/{pid}/smaps_rollup") as smaps:
        for line in smaps:
            parts = line.split()
            if parts and parts[0] in ("Rss:", "Pss:"):
                memory[parts[0]] = int(parts[1]) * 1024
    return {
        'switchyard_os_context_switches_total{kind="voluntary"}': voluntary,
        'switchyard_os_context_switches_total{kind="involuntary"}': involuntary,
        'switchyard_cpu_seconds_total{mode="user"}': int(fields[11]) / ticks,
        'switchyard_cpu_seconds_total{mode="system"}': int(fields[12]) / ticks,
        'switchyard_memory_bytes{kind="rss"}': memory.get("Rss:", 0),
        'switchyard_memory_bytes{kind="pss"}': memory.get("Pss:", 0),
        "switchyard_os_threads": len(os.listdir(f"/proc/{pid}/task")),
        "switchyard_os_processes": 1,
    }


class RedisServer(_ServerProcess):
    """redis-server as a reference row: persistence off, loopback, a free port, pinned like ours."""

    model = "redis"

    def __init__(self, cpus=None, fd_limit=65536):
        self.port = _free_port()
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--maxclients", "20000", "--protected-mode", "no"]
        if cpus:
            command = ["taskset", "-c", cpus, *command]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL,
                                        preexec_fn=lambda: _raise_fd_limit(fd_limit))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ServerError("redis-server did not start")

    def scrape(self):
        """_proc_stats, its requests (INFO stats) and Redis's own count of its normal clients'
        memory (INFO memory's mem_clients_normal: query and output buffers and client structs,
        refreshed by its clientsCron, which visits every client once a second)."""
        samples = _proc_stats(self.process.pid)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            info = _info(conn, "stats") + _info(conn, "memory")
        for field, name in ((rb"total_commands_processed", "switchyard_requests_total"),
                            (rb"mem_clients_normal", "redis_mem_clients_normal_bytes")):
            match = re.search(rb"\n" + field + rb":(\d+)", info)
            if match:
                samples[name] = float(match.group(1))
        samples.setdefault("switchyard_requests_total", 0.0)
        return samples


def _info(conn, section):
    """One INFO section, read whole: its reply is a bulk string of the length it states."""
    conn.sendall(_command("INFO", section))
    reply = b""
    while b"\r\n" not in reply:
        reply += _recv(conn)
    header, _, body = reply.partition(b"\r\n")
    length = int(header[1:]) if header.startswith(b"$") else 0
    while len(body) < length + 2:
        body += _recv(conn)
    return b"\n" + body[:length]


def _recv(conn):
    data = conn.recv(65536)
    if not data:
        raise ServerError("redis-server closed the connection during INFO")
    return data
