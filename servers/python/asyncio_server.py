"""The asyncio and uvloop models: a coroutine per connection (an `async def` handler on asyncio
streams, as asyncio.start_server serves it), all on one event loop in one thread. --model uvloop
runs the same code on uvloop's loop (libuv) instead of asyncio's own (selectors): the difference
between the two rows of the report is the loop alone.

SY.WAIT is `await asyncio.sleep` (the coroutine suspends, the loop serves others); SY.BLOCK is a
real time.sleep that stalls the loop and every connection on it, which is what it is for.
"""
import asyncio
import socket
import sys

import peer
from metrics import CountedCoroutine
from session import CLOSE, NEED_INPUT, READ_BYTES, WAIT, Session


async def serve_connection(reader, writer, service):
    """The connection's life: parse and answer what arrived, write it, read more. False when
    the client was dropped (its transport aborted), True when it ends in an orderly close."""
    session = Session(service)
    transport = writer.transport
    limit = service.config.output_buffer_bytes
    fd = transport.get_extra_info("socket").fileno()
    while True:
        step = session.process()
        if session.output:
            writer.write(session.take_output())
            # The transport buffers what the kernel did not take; past the limit, drop the client.
            unsent = transport.get_write_buffer_size()
            if unsent and peer.over_output_limit(fd, unsent, limit):
                service.metrics.error(service.metrics.LIMIT)
                transport.abort()
                return False
            # Replies are written before more requests are read: a client that does not read
            # parks here, and the kernel's buffers push back on it.
            await writer.drain()
        if step is NEED_INPUT:
            data = await reader.read(READ_BYTES)
            if not data:
                return True
            session.feed(data)
        elif step is WAIT:
            await asyncio.sleep(session.wait_seconds)
            session.finish_wait()
        elif step is CLOSE:
            return True


def make_handler(service, connections):
    metrics = service.metrics

    async def handle(reader, writer):
        sock = writer.get_extra_info("socket")
        peer.set_no_delay(sock)
        fd = sock.fileno()
        def shutdown_read():
            # By descriptor: uvloop's transport sockets refuse shutdown(). The transport closes
            # the descriptor only after is_closing(), and both run on this thread, so the
            # descriptor is still this connection's here.
            if not writer.transport.is_closing():
                peer.shutdown_fd(fd, socket.SHUT_RD)

        if not connections.admit(writer, fd, shutdown_read):
            writer.transport.abort()
            return
        metrics.task_started()
        try:
            if await CountedCoroutine(serve_connection(reader, writer, service), metrics):
                writer.close()
                await writer.wait_closed()  # the last replies are out: the connection is done
        except ConnectionError:
            pass  # the client went away
        except Exception as error:  # one connection's failure closes it alone
            connections.failed(fd, error)
        finally:
            writer.transport.abort()
            metrics.task_ended()
            connections.close(writer)

    return handle


async def run(config, listener):
    metrics = peer.make_metrics(config)
    service = peer.make_service(config, metrics)
    connections = peer.OpenConnections(config, metrics)
    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(make_handler(service, connections), sock=listener,
                                        limit=READ_BYTES)
    stop = asyncio.Event()
    signals = peer.StopSignals(config, stop.set)
    for signum in signals.signals:
        loop.add_signal_handler(signum, signals, signum)
    peer.signal_ready(config, listener)
    await stop.wait()

    server.close()  # no more accepting
    drained = asyncio.Event()
    connections.stop_reading(drained.set)
    try:
        await asyncio.wait_for(drained.wait(), config.shutdown_timeout)
    except asyncio.TimeoutError:
        pass
    status = connections.finish()
    if status:
        peer.exit_abandoning(status)
    return status


def serve(config):
    listener = peer.listening_socket(config)
    listener.setblocking(False)
    if config.model == "uvloop":
        import uvloop
        loop_factory = uvloop.new_event_loop
    else:
        loop_factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(run(config, listener))


if __name__ == "__main__":
    sys.exit(peer.main())
