"""What ``lienlac serve`` runs: the app on gevent's WSGI server, stopped cleanly by SIGTERM or SIGINT.

The process is patched for gevent before anything loads (``service.cli``): every connection,
request and background task (the socket sweeper, the presence refresher, in-process jobs, the
Redis listener) is a greenlet in one OS thread, and per-thread state (peewee's connection,
Flask's contexts) is per greenlet. Socket.IO runs in Flask-SocketIO's ``gevent`` mode; WebSocket
goes through simple-websocket on the raw socket (``realtime._websocket_on_any_gevent_server``).
On SQLite a query runs in C without yielding to another greenlet, so a write transaction must
not wait on the network before it commits (it does not: emits and enqueues leave on commit,
``db.on_commit``); otherwise another greenlet's write would sit in SQLite's busy wait, blocking
the process, while the holder cannot run to commit. The server writes no access log: the app's JSON request log (``service.logs``) is the one line
per request.

On SIGTERM or SIGINT: stop accepting, disconnect every Socket.IO client here (their disconnect
handlers clear presence; behind a load balancer they reconnect to another process), let the
requests in flight finish for up to ``STOP_SECONDS``, close what is left (idle keep-alive
connections) and return, so the process exits 0 (in-process jobs already running finish on the
way out).
"""
from __future__ import annotations

import logging
import signal
import socket
import time

import gevent
import gevent.event
import gevent.pool
from gevent import pywsgi

log = logging.getLogger("lienlac.serve")

STOP_SECONDS = 5.0


class _Handler(pywsgi.WSGIHandler):
    """Counts the requests being answered (not the idle keep-alive connections), on sockets with
    TCP_NODELAY: gevent writes a response's headers and its body in two sends, and with Nagle's
    algorithm on, the body waited for the client's delayed ACK of the headers (40 ms on Linux) on
    every keep-alive request once the connection was busy; WebSocket frames the same."""

    def handle(self):
        try:
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):  # not TCP (a Unix socket)
            pass
        return super().handle()

    def handle_one_response(self):
        server = self.server
        server.busy += 1
        try:
            return super().handle_one_response()
        finally:
            server.busy -= 1
            if server.stopping:
                self.close_connection = True  # no next request on this connection


class Server(pywsgi.WSGIServer):
    handler_class = _Handler

    def __init__(self, listener, application):
        # log=None: no access log line; a pool so stopping can reach every connection's greenlet
        super().__init__(listener, application, log=None, spawn=gevent.pool.Pool())
        self.busy = 0
        self.stopping = False
        self.stopped = gevent.event.Event()

    def graceful_stop(self, socketio=None, timeout: float = STOP_SECONDS) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.close()  # no new connections
        try:
            if socketio is not None and socketio.server is not None:
                socketio.server.eio.disconnect()  # every client here; their long polls return at once
        except Exception:  # noqa: BLE001 - stopping anyway
            log.warning("could not disconnect every socket", exc_info=True)
        deadline = time.monotonic() + timeout
        while self.busy and time.monotonic() < deadline:
            gevent.sleep(0.02)
        if self.busy:
            log.warning("stopped with requests unfinished", extra={"event": f"{self.busy} requests"})
        self.pool.kill(block=True, timeout=1)  # idle keep-alive connections (and anything late)
        self.stopped.set()


def make_server(app, host: str, port: int) -> Server:
    """gevent's WSGI server for ``app`` (its ``wsgi_app`` wrapped by Flask-SocketIO)."""
    return Server((host, port), app)


def serve_forever(app, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then stop as described above and return."""
    from .realtime import socketio

    server = make_server(app, host, port)

    def on_signal(signum: int) -> None:
        log.info("stopping", extra={"event": signal.Signals(signum).name})
        gevent.spawn(server.graceful_stop, socketio)

    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, on_signal, signum)
    server.start()
    server.stopped.wait()
    log.info("stopped")
