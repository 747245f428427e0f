"""A small threaded HTTPS server that runs a WSGI app in the background.

Each sandbox service (sign-in, Graph, SCIM) is one of these on loopback. Two details
differ from a plain ``werkzeug.serving.make_server(..., ssl_context=ctx)``:

* The TLS handshake runs in the request thread, not in the accept loop. werkzeug wraps
  the *listening* socket, so a client that connects and then stalls (or never speaks
  TLS) would hold up every other client until it gave up.
* werkzeug's access log is silenced. It prints the request line, and the sandbox keeps
  its own log (see :mod:`._request_log`) where secrets are redacted. Errors still go to the
  ``runbook_lib.sim`` logger at DEBUG level, after redaction.
* HTTP/1.1 keep-alive works. werkzeug's development server closes every connection
  because it cannot tell where an unread request body ends; here the handler reads
  each body up front, so the next request starts where it should. Without this every
  request pays a new TLS handshake, which made the provisioning engine (thousands of
  SCIM requests a cycle) several times slower. ``stop()`` closes connections still open.
"""

from __future__ import annotations

import io
import logging
import socket
import ssl
import threading
from typing import TYPE_CHECKING, Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from ._request_log import Redactor

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

__all__ = ["HttpsServer"]

_logger = logging.getLogger("runbook_lib.sim")

# Idle keep-alive connections and stalled handshakes are dropped after this many
# seconds, so request threads do not outlive a stopped sandbox for long.
_SOCKET_TIMEOUT = 30.0
# How often the accept loop checks for a stop request; bounds how long stop() takes.
_POLL_INTERVAL = 0.05
# Request bodies up to this size are read up front (keep-alive); larger ones close.
_MAX_BUFFERED_BODY = 32 * 1024 * 1024


class _QuietHandler(WSGIRequestHandler):
    """Request handler that never writes the request line to werkzeug's logger."""

    redactor: Redactor = Redactor()
    timeout = _SOCKET_TIMEOUT
    server: _Server
    _buffered = False

    def setup(self) -> None:
        super().setup()
        # Responses go out as several small writes; without TCP_NODELAY a kept-alive
        # connection stalls on Nagle's algorithm and delayed ACKs (~40 ms a request).
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, open_=False)

    def make_environ(self) -> WSGIEnvironment:
        """werkzeug's environ, with the request body already read into memory."""
        environ = super().make_environ()
        self._buffered = False
        if environ.pop("wsgi.input_terminated", False):
            stream = environ["wsgi.input"]
            body = b"".join(iter(lambda: stream.read(65536), b""))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
        else:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > _MAX_BUFFERED_BODY:
                return environ
            body = self.rfile.read(length) if length > 0 else b""
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input"] = io.BytesIO(body)
        self._buffered = True
        # After the response, werkzeug drains whatever the socket has, which on a kept-alive
        # connection is the client's *next* request: give it an empty stream instead.
        self.rfile = io.BytesIO(b"")
        return environ

    def run_wsgi(self) -> None:
        connection_reader = self.rfile
        try:
            super().run_wsgi()
        finally:
            self.rfile = connection_reader

    def send_header(self, keyword: str, value: str) -> None:
        # werkzeug always sends "Connection: close"; keep the connection open when the
        # body was read up front and the client did not ask to close.
        if (
            keyword.lower() == "connection"
            and value.lower() == "close"
            and self._buffered
            and not self.close_connection
        ):
            return
        super().send_header(keyword, value)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The sandbox's own request log records every request (see _request_log.py).
        return None

    def log(self, type: str, message: str, *args: Any) -> None:
        try:
            text = message % args if args else message
        except (TypeError, ValueError):
            text = message
        _logger.debug("%s", self.redactor.redact(text))


class _Server(ThreadedWSGIServer):
    """werkzeug's threaded server with the handshake moved into the request thread."""

    def __init__(
        self,
        host: str,
        port: int,
        app: WSGIApplication,
        handler: type[WSGIRequestHandler],
        ssl_context: ssl.SSLContext,
    ) -> None:
        super().__init__(host, port, app, handler=handler, ssl_context=None)
        self.socket = ssl_context.wrap_socket(
            self.socket, server_side=True, do_handshake_on_connect=False
        )
        # werkzeug derives wsgi.url_scheme ("https") from this attribute.
        self.ssl_context = ssl_context
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        """Remember (or forget) a client connection, so stop() can close it."""
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Close every kept-alive client connection."""
        with self._connections_lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def log(self, type: str, message: str, *args: Any) -> None:
        redactor: Redactor = getattr(self.RequestHandlerClass, "redactor", Redactor())
        try:
            text = message % args if args else message
        except (TypeError, ValueError):
            text = message
        _logger.debug("%s", redactor.redact(text))

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver would print a traceback on stderr (a client that hangs up
        # mid-handshake, say). Keep the sandbox quiet; the detail goes to DEBUG.
        _logger.debug("connection error from %s", client_address, exc_info=True)


class HttpsServer:
    """One WSGI app served over HTTPS from a daemon thread.

    ``start()`` binds (port 0 picks a free port) and returns once the socket is
    listening; ``stop()`` stops the accept loop and closes the socket.
    """

    def __init__(
        self,
        name: str,
        app: WSGIApplication,
        ssl_context: ssl.SSLContext,
        redactor: Redactor,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.name = name
        self._app = app
        self._ssl_context = ssl_context
        self._redactor = redactor
        self._host = host
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The bound port (only meaningful once started)."""
        if self._server is None:
            raise RuntimeError(f"the {self.name} server is not running")
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        """``https://host:port`` of the running server."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"https://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the accept loop is running."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Bind the socket and start serving in a daemon thread."""
        if self._server is not None:
            raise RuntimeError(f"the {self.name} server is already running")
        handler = type(
            f"_{self.name.title()}Handler", (_QuietHandler,), {"redactor": self._redactor}
        )
        try:
            server = _Server(
                self._host, self._requested_port, self._app, handler, self._ssl_context
            )
        except SystemExit as exc:
            # werkzeug exits the process when the port is taken; a library must not.
            raise OSError(
                f"the sandbox {self.name} server could not listen on "
                f"{self._host}:{self._requested_port} (port in use?)"
            ) from exc
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name=f"runbook-sim-{self.name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting requests and close the listening socket (idempotent)."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        if thread is not None:
            thread.join(timeout=5)
        server.close_connections()
        server.server_close()

    @staticmethod
    def stop_all(servers: list[HttpsServer]) -> None:
        """Stop several servers at once (each stop waits up to one poll interval)."""
        threads = [threading.Thread(target=server.stop) for server in servers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
