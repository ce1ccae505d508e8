"""A small OpenAI-compatible chat server on 127.0.0.1 for tests, with scripted failures.

``FakeOpenAI.script`` is a list of behaviours consumed one per request: "ok", "429", "500", "garbage"
(non-JSON body), "nochoices" (JSON without choices) or "hang" (answer after ``hang_seconds``). When the
script is empty every request is answered "ok" with an answer derived from the request.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self, hang_seconds: float = 2.0):
        self.script: list[str] = []
        self.requests: list[dict] = []
        self.hang_seconds = hang_seconds
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.requests.append({"path": self.path, "body": body,
                                            "auth": self.headers.get("Authorization")})
                    behaviour = server.script.pop(0) if server.script else "ok"
                if behaviour == "hang":
                    time.sleep(server.hang_seconds)
                    behaviour = "ok"
                if behaviour in ("429", "500"):
                    return self._send(int(behaviour), b'{"error": {"message": "try later"}}')
                if behaviour == "garbage":
                    return self._send(200, b"<html>502 proxy error</html>")
                if behaviour == "nochoices":
                    return self._send(200, b'{"object": "chat.completion"}')
                if behaviour == "400":
                    return self._send(400, b'{"error": {"message": "model not found"}}')
                return self._send(200, json.dumps(server.answer(body)).encode())

            def _send(self, status: int, payload: bytes):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @staticmethod
    def answer(body: dict) -> dict:
        """Answer with the text part of the last message, upper-cased, and whether an image came along."""
        content = body["messages"][-1]["content"]
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        text = " ".join(p["text"] for p in parts if p["type"] == "text")
        has_image = any(p["type"] == "image_url" and p["image_url"]["url"].startswith("data:image/png;base64,")
                        for p in parts)
        n = body.get("n", 1)
        choices = [{"index": i, "message": {"role": "assistant", "content": f"{text.upper()}|image={has_image}|{i}"},
                    "finish_reason": "stop"} for i in range(n)]
        return {"object": "chat.completion", "model": body["model"], "choices": choices}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
