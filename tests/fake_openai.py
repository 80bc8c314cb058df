"""An HTTP-level fake of the OpenAI API on 127.0.0.1, for testing our OpenAI integration offline.

It speaks the wire format (JSON bodies, SSE streams, error objects, status codes) so the real
``openai`` / ``langchain-openai`` clients run unmodified against it; nothing of ours is patched.
Routes are registered in ``ROUTES``; other test modules may add routes (e.g. files, fine-tuning jobs)
with ``FakeOpenAI.route``. Every request is recorded in ``server.requests``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GOOD_KEY = "sk-test-good"
EMBED_DIM = 64


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    query: str = ""


@dataclass
class Response:
    status: int = 200
    json: Any = None
    sse: list[Any] | None = None  # each item is sent as `data: <json>`; "[DONE]" appended
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, message: str, type_: str, code: str | None = None, param: str | None = None) -> Response:
    return Response(status, {"error": {"message": message, "type": type_, "param": param, "code": code}})


Handler = Callable[["FakeOpenAI", Request, re.Match], Response]


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.routes: list[tuple[str, re.Pattern, Handler]] = []
        self.state: dict[str, Any] = {}  # free for route handlers (files, jobs...)
        self.reply_text = "Paris is the capital of France [1]."
        self.models = ["gpt-4.1-mini", "gpt-4o-mini-2024-07-18", "text-embedding-3-small"]
        for method, pattern, handler in ROUTES:
            self.route(method, pattern, handler)
        fake = self

        class _H(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self, method: str) -> None:
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parsed = None
                if body and "json" in (self.headers.get("Content-Type") or ""):
                    parsed = json.loads(body)
                req = Request(method, path, {k.lower(): v for k, v in self.headers.items()}, body, parsed, query)
                fake.requests.append(req)
                resp = fake.dispatch(req)
                self.send_response(resp.status)
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                if resp.sse is not None:
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for item in [*resp.sse, "[DONE]"]:
                        data = item if isinstance(item, str) else json.dumps(item)
                        self.wfile.write(f"data: {data}\n\n".encode())
                        self.wfile.flush()
                    return
                payload = resp.raw if resp.raw is not None else json.dumps(resp.json).encode()
                self.send_header("Content-Type", "application/json" if resp.raw is None else "application/octet-stream")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False  # a client that dropped a stream must not hold up teardown
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.insert(0, (method, re.compile(f"^/v1{pattern}$"), handler))

    def dispatch(self, req: Request) -> Response:
        auth = req.headers.get("authorization", "")
        if auth != f"Bearer {GOOD_KEY}":
            if self.state.get("echo_key"):  # some proxies and self-hosted servers repeat the key they refuse
                return error(401, f"Incorrect API key provided: {auth.removeprefix('Bearer ')}. Header was "
                             f"'Authorization: {auth}'", "invalid_request_error", "invalid_api_key")
            return error(401, "Incorrect API key provided: sk-***. You can find your API key at "
                         "https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key")
        for method, pattern, handler in self.routes:
            match = pattern.match(req.path)
            if match and method == req.method:
                return handler(self, req, match)
        return error(404, f"Unknown request URL: {req.method} {req.path}", "invalid_request_error", "unknown_url")

    def start(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _models(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    data = [{"id": mid, "object": "model", "created": 1700000000, "owned_by": "system"} for mid in fake.models]
    return Response(json={"object": "list", "data": data})


def _chat(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    body = req.json or {}
    model = body.get("model", "")
    if not body.get("messages"):
        return error(400, "'messages' is a required property", "invalid_request_error", None, "messages")
    if model not in fake.models and not model.startswith("ft:"):
        return error(404, f"The model `{model}` does not exist or you do not have access to it.",
                     "invalid_request_error", "model_not_found")
    if fake.state.get("rate_limited"):
        return error(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded")
    text = fake.reply_text
    prompt_tokens = sum(len(str(x.get("content", "")).split()) for x in body["messages"])
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
             "total_tokens": prompt_tokens + len(text.split())}
    cid, created = "chatcmpl-fake123", int(time.time())
    if body.get("stream"):
        words = re.findall(r"\S+\s*", text)
        chunks: list[Any] = [{"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                              "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                           "finish_reason": None}]}]
        for w in words:
            chunks.append({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]})
        chunks.append({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": [], "usage": usage})
        return Response(sse=chunks)
    return Response(json={
        "id": cid, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": usage,
    })


def fake_vector(text: str) -> list[float]:
    """Deterministic unit vector from word hashes: texts sharing words are close."""
    vec = [0.0] * EMBED_DIM
    for word in re.findall(r"\w+", text.lower()):
        h = int(hashlib.md5(word.encode()).hexdigest(), 16)
        vec[h % EMBED_DIM] += 1.0
    norm = sum(v * v for v in vec) ** 0.5 or 1.0
    return [v / norm for v in vec]


def _embeddings(fake: FakeOpenAI, req: Request, m: re.Match) -> Response:
    body = req.json or {}
    inputs = body.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if not inputs or not all(isinstance(x, str) for x in inputs):
        return error(400, "'input' must be a string or a list of strings here", "invalid_request_error", None, "input")
    data = [{"object": "embedding", "index": i, "embedding": fake_vector(t)} for i, t in enumerate(inputs)]
    tokens = sum(len(t.split()) for t in inputs)
    return Response(json={"object": "list", "data": data, "model": body.get("model"),
                          "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/models", _models),
    ("POST", "/chat/completions", _chat),
    ("POST", "/embeddings", _embeddings),
]
