"""One client connection's protocol state, shared by every Python model: input buffer, parser,
replies (servers/common/session.cc). The model owns the socket and decides how to read, write and
wait; the session only says which comes next. A model's connection loop is then:

    while True:
        step = session.process()
        write session.output fully, then clear it
        NEED_INPUT: read, session.feed(data) (close on end of file)
        FLUSH:      nothing more (the output was large, so it was written before going on)
        WAIT:       wait session.wait_seconds the model's natural way, then session.finish_wait()
        CLOSE:      close the connection

Replies are written before more requests are read, so a client that never reads its replies
makes the server stop reading from it and costs bounded memory.
"""
import time

import resp
from command_table import INDEX
from commands import CLOSE as CLOSE_OUTCOME
from resp import Parser, ProtocolError

NEED_INPUT, FLUSH, WAIT, CLOSE = "need input", "flush", "wait", "close"

# Replies are written once this much is pending, so a deep pipeline is answered in slices.
FLUSH_BYTES = 64 * 1024
# How much a read asks for: what one socket read of a busy connection usually brings.
READ_BYTES = 64 * 1024

_SY_WAIT = INDEX[b"sy.wait"]


class Session:
    __slots__ = ("service", "metrics", "config", "connection", "parser", "input", "pos", "output",
                 "wait_seconds", "_wait_started")

    def __init__(self, service):
        self.service = service
        self.metrics = service.metrics
        self.config = service.config
        self.connection = service.new_connection()
        self.parser = Parser(self.config.max_bulk_bytes, self.config.max_inline_bytes)
        self.input = bytearray()
        self.pos = 0  # input before this is parsed
        self.output = bytearray()
        self.wait_seconds = 0.0
        self._wait_started = 0

    def feed(self, data):
        self.input += data

    def process(self):
        """Runs every complete request in the input, in order, appending replies to output."""
        config = self.config
        metrics = self.metrics
        output = self.output
        execute = self.service.execute
        parse = self.parser.parse
        timed = metrics.request_metrics
        clock = time.perf_counter_ns
        while True:
            if config.output_buffer_bytes and len(output) > config.output_buffer_bytes:
                # Redis's client-output-buffer-limit: the client is not keeping up; dropped.
                metrics.error(metrics.LIMIT)
                output.clear()
                return CLOSE
            if len(output) >= FLUSH_BYTES:
                return FLUSH
            try:
                args, self.pos = parse(self.input, self.pos)
            except ProtocolError as error:
                metrics.error(metrics.PROTOCOL)
                resp.error(output, str(error))
                return CLOSE  # as Redis does: after a protocol error nothing can be trusted
            if args is None:
                if self.pos == len(self.input):
                    self.input.clear()
                elif self.pos:
                    del self.input[:self.pos]
                self.pos = 0
                if len(self.input) + self.parser.buffered_bytes > config.query_buffer_bytes:
                    # Redis closes such a client without a reply; so do we.
                    metrics.error(metrics.LIMIT)
                    return CLOSE
                return NEED_INPUT
            started = clock() if timed else 0
            command, outcome = execute(self.connection, args, output)
            if outcome is None:
                if timed:
                    metrics.request(command, clock() - started)
                continue
            if outcome is CLOSE_OUTCOME:
                if timed:
                    metrics.request(command, clock() - started)
                return CLOSE
            self.wait_seconds = outcome
            self._wait_started = started
            return WAIT

    def take_output(self):
        """The replies so far, handed over whole (the caller writes them; no copy is made)."""
        output = self.output
        self.output = bytearray()
        return output

    def finish_wait(self):
        """Completes the SY.WAIT that process() returned WAIT for: its reply and its metrics."""
        self.output += resp.OK
        if self.metrics.request_metrics:
            self.metrics.request(_SY_WAIT, time.perf_counter_ns() - self._wait_started)
