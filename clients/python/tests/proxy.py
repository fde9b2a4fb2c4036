"""A tiny local HTTP proxy in front of the control plane (127.0.0.1 only), whose hooks can
rewrite the request on its way and the answer on its way back, or answer by themselves."""

from __future__ import annotations

import http.server
import threading
import time
import urllib.error
import urllib.request
from typing import Callable, Optional, Tuple

Answer = Tuple[int, bytes]


class Proxy:
    def __init__(
        self,
        upstream: str,
        on_request: Optional[Callable[[bytes], bytes]] = None,
        on_answer: Optional[Callable[[int, bytes], Answer]] = None,
        fixed: Optional[Callable[[bytes], Answer]] = None,
        stall_s: float = 0.0,
    ) -> None:
        outer = self
        self.upstream = upstream
        self.on_request = on_request
        self.on_answer = on_answer
        self.fixed = fixed
        self.stall_s = stall_s
        self.answers: list[Answer] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if outer.stall_s:
                    time.sleep(outer.stall_s)
                if outer.fixed is not None:
                    status, answer = outer.fixed(body)
                else:
                    if outer.on_request is not None:
                        body = outer.on_request(body)
                    req = urllib.request.Request(outer.upstream + self.path, data=body, method="POST")
                    req.add_header("Content-Type", "application/json")
                    auth = self.headers.get("Authorization")
                    if auth:
                        req.add_header("Authorization", auth)
                    try:
                        with urllib.request.urlopen(req, timeout=10) as resp:
                            status, answer = resp.status, resp.read()
                    except urllib.error.HTTPError as e:
                        status, answer = e.code, e.read()
                    except OSError as e:  # upstream gone (e.g. stopped after the test)
                        status, answer = 502, str(e).encode()
                    outer.answers.append((status, answer))
                    if outer.on_answer is not None:
                        status, answer = outer.on_answer(status, answer)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
