"""A small threaded HTTP server on 127.0.0.1 for download tests.

It serves byte strings at paths, answers ``Range: bytes=N-`` / ``bytes=N-M`` with
206 (or ignores Range when told to), follows the redirects it is given, records
every request's headers, and injects faults from a queue, one per file request:
drop the connection after some body bytes, stall before the body, or answer an
error status.

    with FileServer() as server:
        server.serve("/files/1", data)
        server.redirect("/ndownloader/files/1", "/files/1")
        server.inject(Fault(drop_after=1000))
        url = server.url("/ndownloader/files/1")
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


@dataclass(frozen=True)
class Fault:
    """One injected fault, used up by the next request for a served file.

    Attributes:
        drop_after: send this many body bytes, then close the connection.
        stall: seconds to sleep after the headers, before the body.
        status: answer this HTTP error status instead of the file.
    """

    drop_after: int | None = None
    stall: float = 0.0
    status: int | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server saw: method, path and headers (names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)


class FileServer:
    """A threaded HTTP/1.0 server with Range support and fault injection.

    Args:
        range_support: answer Range requests with 206; False answers 200 with the
            whole file, like a server without Range support.
    """

    def __init__(self, *, range_support: bool = True):
        self.range_support = range_support
        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, tuple[str, int]] = {}
        self.faults: deque[Fault] = deque()
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._httpd.handle_error = lambda request, client_address: None  # clients hang up on purpose
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, data: bytes) -> str:
        """Serve ``data`` at ``path``; returns its URL."""
        self.files[path] = data
        return self.url(path)

    def redirect(self, path: str, target: str, status: int = 302) -> str:
        """Answer ``path`` with a redirect to ``target`` (a path here); returns the URL of ``path``."""
        self.redirects[path] = (target, status)
        return self.url(path)

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each file request takes the next one."""
        self.faults.extend(faults)

    def file_requests(self, path: str) -> list[RecordedRequest]:
        """The recorded requests for ``path``."""
        with self._lock:
            return [r for r in self.requests if r.path == path]


def _handler_for(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format, *args):  # noqa: A002 - silence the default stderr log
            pass

        def do_HEAD(self):  # noqa: N802
            self._answer(body=False)

        def do_GET(self):  # noqa: N802
            self._answer(body=True)

        def _answer(self, body: bool) -> None:
            with server._lock:
                server.requests.append(RecordedRequest(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
            if self.path in server.redirects:
                target, status = server.redirects[self.path]
                self.send_response(status)
                self.send_header("Location", server.url(target))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = server.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            with server._lock:
                fault = server.faults.popleft() if server.faults else Fault()
            if fault.status is not None:
                self.send_error(fault.status)
                return
            start, end, status = 0, len(data), 200
            asked = _RANGE.match(self.headers.get("Range", ""))
            if asked and server.range_support:
                start = int(asked.group(1))
                end = min(int(asked.group(2)) + 1, len(data)) if asked.group(2) else len(data)
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            self.send_response(status)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(end - start))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
            self.send_header("Accept-Ranges", "bytes" if server.range_support else "none")
            self.end_headers()
            if not body:
                return
            if fault.stall:
                time.sleep(fault.stall)
            payload = data[start:end]
            if fault.drop_after is not None:
                payload = payload[: fault.drop_after]
            self.wfile.write(payload)
            self.wfile.flush()
            self.close_connection = True

    return Handler
