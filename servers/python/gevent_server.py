"""The gevent model: a greenlet (a stackful coroutine) per connection, spawned by
gevent.server.StreamServer, all switched by gevent's hub (libev) in one thread. The code reads as
blocking (sock.recv, sock.sendall, gevent.sleep); each of those switches to the hub when it would
wait, and the hub switches to a greenlet that can run.

No monkey-patching: the server uses gevent's own sockets and sleep, and nothing else in it waits.
SY.BLOCK takes the original time.sleep through gevent.monkey.get_original, so it stays a real
blocking call that stalls the hub (and every greenlet) even if someone patches the process.

user_switches counts every greenlet switch into the hub (a greenlet that waits, or ends), with
greenlet.settrace: a call from C into Python at each switch, both ways. Measured with two greenlets
ping-ponging through gevent.sleep(0), it adds about a quarter of a microsecond a switch (half a
microsecond a wait), small next to the tens of microseconds a request costs here.
"""
import os
import socket
import sys

import gevent
import gevent.event
import gevent.monkey
import gevent.socket
import greenlet
from gevent.server import StreamServer

import peer
from session import CLOSE, NEED_INPUT, READ_BYTES, WAIT, Session

blocking_sleep = gevent.monkey.get_original("time", "sleep")


def serve_connection(sock, service):
    """The connection's life: parse and answer what arrived, write it, read more."""
    session = Session(service)
    limit = service.config.output_buffer_bytes
    fd = sock.fileno()

    def write(data):
        if not limit:
            sock.sendall(data)
            return True
        return peer.send_all(data, lambda view: os.write(fd, view),
                             lambda: gevent.socket.wait_write(fd), fd, limit)

    while True:
        step = session.process()
        # Replies are written before more requests are read: a client that does not read parks
        # its greenlet here, and the kernel's buffers push back on it.
        if session.output and not write(session.take_output()):
            service.metrics.error(service.metrics.LIMIT)
            return
        if step is NEED_INPUT:
            data = sock.recv(READ_BYTES)
            if not data:
                return
            session.feed(data)
        elif step is WAIT:
            gevent.sleep(session.wait_seconds)
            session.finish_wait()
        elif step is CLOSE:
            return


def count_switches(metrics):
    """Counts each switch into the hub: every time a connection's greenlet gives way."""
    hub = gevent.get_hub()
    count = metrics.user_switch

    def trace(event, args):
        if event in ("switch", "throw") and args[1] is hub:
            count()

    greenlet.settrace(trace)


def serve(config):
    metrics = peer.make_metrics(config)
    service = peer.make_service(config, metrics, blocking_sleep=blocking_sleep)
    connections = peer.OpenConnections(config, metrics)

    def handle(sock, address):
        peer.set_no_delay(sock)
        fd = sock.fileno()
        if not connections.admit(sock, fd, lambda: sock.shutdown(socket.SHUT_RD)):
            sock.close()
            return
        metrics.task_started()
        try:
            serve_connection(sock, service)
        except OSError:
            pass  # the client went away
        except Exception as error:  # one connection's failure closes it alone
            connections.failed(fd, error)
        finally:
            sock.close()
            metrics.task_ended()
            connections.close(sock)

    listener = peer.listening_socket(config)
    listener = gevent.socket.socket(listener.family, listener.type, fileno=listener.detach())
    server = StreamServer(listener, handle)
    stop = gevent.event.Event()
    signals = peer.StopSignals(config, stop.set)
    for signum in signals.signals:
        gevent.signal_handler(signum, signals, signum)
    server.start()
    count_switches(metrics)
    peer.signal_ready(config, listener)
    stop.wait()

    server.close()  # no more accepting; the connections' greenlets go on
    drained = gevent.event.Event()
    connections.stop_reading(drained.set)
    drained.wait(config.shutdown_timeout)
    status = connections.finish()
    if status:
        peer.exit_abandoning(status)
    return status


if __name__ == "__main__":
    sys.exit(peer.main())
