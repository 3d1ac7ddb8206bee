#!/usr/bin/python3
"""Memory per idle connection of two switchyard binaries, model by model, beside redis-server, in
one run: the before-and-after of a change to what a connection holds (io_buffers.h).

Each server runs alone with one event loop on CPU 0; COUNT connections each send one PING, are
answered, then stay silent (compare's own hold_idle_connections). The figure is the growth of the
server's PSS over the hold, and of switchyard_io_buffer_bytes where the binary exports it, divided
by the connections answered.

Usage: servers/common/idle_memory_bench.py COUNT BINARY[,BINARY...] MODEL[,MODEL...]
"""
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from compare.servers import RedisServer, hold_idle_connections  # noqa: E402

PSS = 'switchyard_memory_bytes{kind="pss"}'
BUFFERS = "switchyard_io_buffer_bytes"


def scrape(metrics_port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read()
    samples = {}
    for line in text.decode().splitlines():
        if line.startswith((PSS, BUFFERS)):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def per_connection(binary, model, count):
    server = subprocess.Popen(["taskset", "-c", "0", binary, "serve", "--model", model,
                               "--threads", "1", "--port", "0", "--metrics-port", "0",
                               "--max-clients", "20000"], stdout=subprocess.PIPE, text=True)
    try:
        ready = server.stdout.readline()
        port = int(re.search(r" port=(\d+)", ready).group(1))
        metrics_port = int(re.search(r"metrics_port=(\d+)", ready).group(1))
        before = scrape(metrics_port)
        sockets, answered = hold_idle_connections(port, count, timeout=10)
        time.sleep(0.5)  # for the server to settle what it allocated for them
        after = scrape(metrics_port)
        for conn in sockets:
            conn.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    grown = {k: (after[k] - before.get(k, 0)) / max(1, answered) for k in after}
    return answered, grown.get(PSS, 0.0), grown.get(BUFFERS)


def redis_per_connection(count):
    redis = RedisServer(cpus="0")
    try:
        before = redis.scrape()
        sockets, answered = hold_idle_connections(redis.port, count, timeout=10)
        time.sleep(0.5)
        after = redis.scrape()
        for conn in sockets:
            conn.close()
    finally:
        redis.stop()
    return answered, (after[PSS] - before[PSS]) / max(1, answered)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[-1])
    count, binaries, models = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3].split(",")
    answered, pss = redis_per_connection(count)
    print(f"{'redis-server':16} {'':24} {count} answered={answered} pss/conn={pss:8.0f} B")
    for model in models:
        for binary in binaries:
            answered, pss, buffers = per_connection(binary, model, count)
            shown = "—" if buffers is None else f"{buffers:.0f} B"
            print(f"{model:16} {os.path.basename(binary):24} {count} answered={answered} "
                  f"pss/conn={pss:8.0f} B  io_buffers/conn={shown}")


if __name__ == "__main__":
    main()
