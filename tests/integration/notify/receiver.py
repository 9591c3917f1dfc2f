"""A real HTTP receiver in a thread: records every POST, answers as the test says."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() on receipt

    def json(self) -> dict:  # type: ignore[type-arg]
        return orjson.loads(self.body)


# (request) -> (status, headers, body, delay seconds before answering)
Answer = tuple[int, dict[str, str], bytes, float]


@dataclass
class Receiver:
    port: int = 0
    answer: Callable[[Received], Answer] = lambda _r: (200, {}, b'{"ok":true}', 0.0)
    received: list[Received] = field(default_factory=list)
    started: list[Received] = field(default_factory=list)  # before the answer's delay
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = Received(
                    self.path, dict(self.headers.items()), self.rfile.read(length), time.time()
                )
                receiver.started.append(request)
                status, headers, body, delay = receiver.answer(request)
                if delay:
                    time.sleep(delay)  # the slow receiver of a fault test, not a wait for work
                receiver.received.append(request)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (timeout)

            def log_message(self, *_args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
