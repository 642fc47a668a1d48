"""A tiny real HTTP server on 127.0.0.1 that records each request and answers with canned JSON.

Used where the sandbox cannot show what a client sent (request headers).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"


@contextmanager
def receiver(answers: dict[str, Any]) -> Iterator[Receiver]:
    """Serve ``answers`` until the block ends.

    Each answer maps a path prefix to a JSON body (status 200) or to ``(status, body, headers)``.
    """
    record = Receiver(url="", answers=answers)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            record.requests.append(Recorded(self.command, self.path, dict(self.headers.items()), body))
            path = self.path.split("?")[0]
            match = next((v for k, v in record.answers.items() if path.startswith(k)), None)
            if match is None:
                match = (404, {"errors": [{"status": "Not Found", "code": "404"}]}, {})
            status, content, headers = match if isinstance(match, tuple) else (200, match, {})
            payload = content if isinstance(content, str) else json.dumps(content)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload.encode())

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
