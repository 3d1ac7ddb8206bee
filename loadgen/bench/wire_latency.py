#!/usr/bin/env python3
"""Request-to-reply times as the loopback interface saw them, from a tcpdump capture.

A third view beside the two load generators' own: each data segment to the server's port is a
request, answered by the first data segment back on the same connection whose TCP ack covers it
(the server had read it before writing). The time between the two is the server's part of the
latency (its wake-up, read, work and write), without either client's own costs (its wake-up when
the reply lands, its reads and parsing). Meant for runs with about one request in flight a
connection, as vs_redis_benchmark.sh captures (redis-benchmark -c 1; a fixed rate spread over 10
connections, each idle between requests); requests sent apart but answered in one segment are
all timed to that segment.

Usage: wire_latency.py CAPTURE.pcap SERVER_PORT [SKIP_SECONDS]
Prints: samples p50_us p99_us
"""
import collections
import math
import re
import subprocess
import sys

LINE = re.compile(r"^(\d+\.\d+) IP [\d.]+\.(\d+) > [\d.]+\.(\d+): Flags \[[^]]*\], "
                  r"seq \d+:(\d+), ack (\d+),.* length (\d+)")


def main():
    capture, port = sys.argv[1], sys.argv[2]
    skip = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    text = subprocess.run(
        ["tcpdump", "-r", capture, "-nn", "-S", "-tt", "--time-stamp-precision=nano"],
        capture_output=True, text=True, check=True).stdout
    # Client port -> (end sequence number, time) of each request not yet answered.
    waiting = collections.defaultdict(collections.deque)
    latencies, first = [], None
    for line in text.splitlines():
        match = LINE.match(line)
        if not match or int(match.group(6)) == 0:
            continue
        when, source, destination = float(match.group(1)), match.group(2), match.group(3)
        first = when if first is None else first
        if destination == port:
            waiting[source].append((int(match.group(4)), when))
            continue
        acked = int(match.group(5))
        pending = waiting[destination]
        # Sequence numbers wrap at 2^32: "end <= acked" in TCP's modular sense.
        while pending and (acked - pending[0][0]) % 2**32 < 2**31:
            sent = pending.popleft()[1]
            if sent >= first + skip:
                latencies.append(when - sent)
    if not latencies:
        sys.exit(f"{capture}: no request/reply pairs on port {port}")
    latencies.sort()
    # The sorted list's element ceil(p/100 * n), the rule switchyard's histogram follows.
    at = lambda p: latencies[max(0, math.ceil(p / 100 * len(latencies)) - 1)]
    print(len(latencies), f"{at(50) * 1e6:.1f}", f"{at(99) * 1e6:.1f}")


if __name__ == "__main__":
    main()
