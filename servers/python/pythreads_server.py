"""The pythreads model: an OS thread per connection with blocking sockets, the way a Python server
was written before asyncio (socketserver.ThreadingTCPServer's shape). The kernel schedules the
threads, but only the one holding the GIL runs Python: the others wait in the kernel for it, so
SY.CPU on one connection slows every other (the interpreter hands the GIL over every switch
interval, 5 ms by default), and the OS switches show the GIL's handovers. SY.WAIT and SY.BLOCK are
both time.sleep here: a sleeping thread releases the GIL, so a thread's block is its own.

user_switches stays 0: nothing is switched in user space. The store and the metrics take a lock,
as a thread may be switched out between the read and the write of an update.
"""
import os
import select
import signal
import socket
import sys
import threading
import time

import peer
from session import CLOSE, NEED_INPUT, READ_BYTES, WAIT, Session


def serve_connection(sock, service):
    """The connection's life: parse and answer what arrived, write it, read more."""
    session = Session(service)
    limit = service.config.output_buffer_bytes
    fd = sock.fileno()

    def wait_writable():
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        poller.poll()

    def write(data):
        if not limit:
            sock.sendall(data)
            return True
        return peer.send_all(data, lambda view: sock.send(view, socket.MSG_DONTWAIT),
                             wait_writable, fd, limit)

    while True:
        step = session.process()
        # Replies are written before more requests are read: a client that does not read parks
        # its thread here, and the kernel's buffers push back on it.
        if session.output and not write(session.take_output()):
            service.metrics.error(service.metrics.LIMIT)
            return
        if step is NEED_INPUT:
            data = sock.recv(READ_BYTES)
            if not data:
                return
            session.feed(data)
        elif step is WAIT:
            time.sleep(session.wait_seconds)
            session.finish_wait()
        elif step is CLOSE:
            return


def serve(config):
    if config.stack_kb:
        threading.stack_size(config.stack_kb * 1024)
    metrics = peer.make_metrics(config, thread_safe=True)
    service = peer.make_service(config, metrics, store_lock=threading.Lock())
    connections = peer.OpenConnections(config, metrics)

    def handle(sock):
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
    listener.setblocking(False)
    # A signal's Python handler runs in the main thread, but a blocking select() would be retried
    # after it (PEP 475); the wake-up pipe makes the select itself return.
    wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_write)
    stop = threading.Event()
    signals = peer.StopSignals(config, stop.set)
    for signum in signals.signals:
        signal.signal(signum, signals)
    peer.signal_ready(config, listener)

    while not stop.is_set():
        readable, _, _ = select.select([listener, wake_read], [], [])
        if wake_read in readable:
            os.read(wake_read, 512)
        if listener not in readable:
            continue
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            continue
        except OSError as error:  # out of descriptors, say: back off rather than spin
            peer.log("accept failed: %s" % error)
            time.sleep(0.01)
            continue
        sock.setblocking(True)
        peer.set_no_delay(sock)
        threading.Thread(target=handle, args=(sock,), daemon=True).start()

    listener.close()  # no more accepting
    drained = threading.Event()
    connections.stop_reading(drained.set)
    drained.wait(config.shutdown_timeout)
    status = connections.finish()
    if status:
        peer.exit_abandoning(status)
    return status


if __name__ == "__main__":
    sys.exit(peer.main())
