"""A small fault-injecting HTTP proxy for tests: stdlib only, threaded, on 127.0.0.1.

Every POST (a chat request) gets the next fault of a schedule: a list consumed in order (then
`default`), or a callable `(request_number) -> fault`. GETs (e.g. /v1/models) are always passed.
Faults, optionally with an argument after ':' (`slow:1.5`, `429:2`):

- `pass`: forward to the upstream server and relay its answer;
- `drop`: read the request, close the connection without answering;
- `429[:retry_after]`, `500`, `503`: answer that status (429 with `Retry-After`, default 0);
- `slow[:seconds]`: sleep (default 1 s), then forward;
- `hang[:seconds]`: sleep (default 5 s), then close without answering (a client timeout);
- `truncated`: forward, send the upstream's headers (full Content-Length) and half the body, then
  close: the client sees the connection end mid-body;
- `cut`: forward, send half the body with a Content-Length that matches it: a complete 200 answer
  whose JSON is cut off;
- `malformed`: a 200 `application/json` answer that is not JSON;
- `html`: a 200 `text/html` answer (what a misconfigured reverse proxy sends);
- `shape`: a 200 answer with valid JSON of the wrong shape (no `choices`).

If the upstream cannot be reached the proxy drops the connection, like a dead server would; a
client that gave up (timed out) before the answer is recorded with `client_gone`. The proxy
records every request (`records`) and the most chat requests it saw in flight at once.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

Schedule = Sequence[str] | Callable[[int], str]
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}
FAULTS = {"pass", "drop", "hang", "429", "500", "503", "slow", "truncated", "cut", "malformed", "html", "shape"}


@dataclass
class Record:
    """One request the proxy handled."""

    number: int
    method: str
    path: str
    fault: str
    start: float
    end: float = 0.0
    status: int | None = None
    """Status sent to the client (None: dropped or cut off)."""
    upstream_status: int | None = None
    client_gone: bool = False
    """The client closed the connection before the answer was written (e.g. it timed out)."""


class FaultProxy:
    """Forward `127.0.0.1:<port>` to `upstream` (e.g. `http://127.0.0.1:8080`), injecting faults."""

    def __init__(self, upstream: str, schedule: Schedule = (), default: str = "pass") -> None:
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.lock = threading.Lock()
        self.records: list[Record] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.set_schedule(schedule, default)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """The proxy's OpenAI base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    def set_schedule(self, schedule: Schedule, default: str = "pass") -> None:
        """Faults for the chat requests from now on: request numbers restart at 0, and the records and
        the in-flight peak start afresh."""
        if not callable(schedule):
            bad = [f for f in schedule if f.partition(":")[0] not in FAULTS]
            assert not bad and default.partition(":")[0] in FAULTS, f"unknown faults {bad or default}"
        with self.lock:
            self.schedule, self.default = schedule, default
            self.count = 0
            self.records = []
            self.max_in_flight = self.in_flight

    def chat_records(self) -> list[Record]:
        """The chat requests handled so far, once none is in flight: a request is recorded after its answer
        was written, so a client can see the answer (and finish) before the record exists."""
        self.wait_idle()
        with self.lock:
            return [r for r in self.records if r.method == "POST"]

    def faults(self) -> dict[str, int]:
        """How many chat requests got each fault (argument dropped)."""
        counts: dict[str, int] = {}
        for r in self.chat_records():
            kind = r.fault.partition(":")[0]
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    def wait_idle(self, timeout_s: float = 30) -> None:
        """Wait until no chat request is being handled (e.g. a `hang` the client already gave up on)."""
        deadline = time.monotonic() + timeout_s
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not self.in_flight, f"{self.in_flight} requests still in flight after {timeout_s} s"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next_fault(self) -> tuple[int, str]:
        with self.lock:
            n = self.count
            self.count += 1
            if callable(self.schedule):
                fault = self.schedule(n)
            else:
                fault = self.schedule[n] if n < len(self.schedule) else self.default
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return n, fault

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                rec = Record(-1, "GET", self.path, "pass", time.monotonic())
                self._forward(rec, b"")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                n, fault = proxy._next_fault()
                rec = Record(n, "POST", self.path, fault, time.monotonic())
                try:
                    self._apply(rec, body)
                except (BrokenPipeError, ConnectionResetError):
                    rec.client_gone, rec.end = True, time.monotonic()
                    self.close_connection = True
                    self._record(rec)
                finally:
                    with proxy.lock:
                        proxy.in_flight -= 1

            def _apply(self, rec: Record, body: bytes) -> None:
                kind, _, arg = rec.fault.partition(":")
                if kind in ("drop", "hang"):
                    if kind == "hang":
                        time.sleep(float(arg or 5.0))
                    self._drop(rec)
                elif kind in ("429", "500", "503"):
                    headers = {"Retry-After": arg or "0"} if kind == "429" else {}
                    self._answer(rec, int(kind), b'{"error": {"message": "injected %s"}}' % kind.encode(), headers)
                elif kind == "malformed":
                    self._answer(rec, 200, b'{"id": "chatcmpl-x", "choices": [{"index": 0, "mess')  # not JSON
                elif kind == "html":
                    self._answer(rec, 200, b"<html><body>502 Bad Gateway</body></html>", {}, "text/html")
                elif kind == "shape":
                    self._answer(rec, 200, b'{"object": "chat.completion", "result": "ok"}')
                else:
                    if kind == "slow":
                        time.sleep(float(arg or 1.0))
                    self._forward(rec, body, kind)

            def _drop(self, rec: Record) -> None:
                self.close_connection = True
                rec.end = time.monotonic()
                self._record(rec)

            def _answer(self, rec: Record, status: int, data: bytes, headers: dict[str, str] | None = None,
                        content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
                rec.status, rec.end = status, time.monotonic()
                self._record(rec)

            def _forward(self, rec: Record, body: bytes, kind: str = "pass") -> None:
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS | {"host"}}
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    upstream_headers = resp.getheaders()
                    rec.upstream_status = resp.status
                except OSError:  # the upstream is down: behave like it
                    self._drop(rec)
                    return
                finally:
                    conn.close()
                self.send_response(resp.status)
                for k, v in upstream_headers:
                    if k.lower() not in HOP_HEADERS:
                        self.send_header(k, v)
                if kind == "truncated":
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    rec.end = time.monotonic()
                    self._record(rec)
                    return
                if kind == "cut":
                    data = data[: len(data) // 2]
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                rec.status, rec.end = resp.status, time.monotonic()
                self._record(rec)

            def _record(self, rec: Record) -> None:
                with proxy.lock:
                    proxy.records.append(rec)

        return Handler
