"""A local HTTP server that replays recorded (VCR cassette) LLM API responses to the real SDKs.

Tests point an SDK's base URL at ``server.url``; each request is answered with the next unused
recorded interaction whose method and path match (query string and host ignored), with the
recorded status, headers and body. Server-sent-event bodies are written event by event with a
flush, so SDK streaming code really streams. Request bodies are recorded (JSON-decoded when they
are JSON) so tests can assert on what the instrumented SDK sent.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]

# Hop-by-hop and framing headers are re-created by this server, never copied from a cassette.
_SKIPPED_RESPONSE_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding", "date"}
)
# Status for a request no cassette answers: not retried by the OpenAI / Anthropic SDKs (they
# retry 408, 409, 429 and 5xx), so a test fails fast with a readable error body.
NO_MATCH_STATUS = 418


def fixtures_dir() -> Path:
    """The recorded cassettes: ``$OTEL_TOKENS_FIXTURES`` or ``../shared/fixtures/recorded``."""
    env = os.environ.get("OTEL_TOKENS_FIXTURES")
    if env:
        return Path(env)
    return (REPO_ROOT.parent / "shared" / "fixtures" / "recorded").resolve()


def usage_index() -> list[dict[str, Any]]:
    """Every recorded interaction with its expected usage, as in ``usage_index.json``."""
    with (fixtures_dir() / "usage_index.json").open(encoding="utf-8") as fh:
        entries: list[dict[str, Any]] = json.load(fh)
    return entries


def usage_entries(
    provider: str | None = None, *, ok: bool | None = None, streaming: bool | None = None
) -> list[dict[str, Any]]:
    """Index entries filtered by provider (openai / anthropic / gemini), 2xx status, streaming.

    Handy for ``pytest.mark.parametrize(..., ids=lambda e: e["file"])``.
    """
    out = []
    for entry in usage_index():
        if provider is not None and entry["provider"] != provider:
            continue
        if ok is not None and (200 <= entry["status"] < 300) != ok:
            continue
        if streaming is not None and bool(entry["streaming"]) != streaming:
            continue
        out.append(entry)
    return out


@dataclass
class Interaction:
    """One recorded request/response pair."""

    cassette: str
    index: int
    method: str
    path: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    request_body: Any = None

    @property
    def content_type(self) -> str:
        for name, value in self.headers:
            if name.lower() == "content-type":
                return value
        return ""

    @property
    def is_event_stream(self) -> bool:
        return self.content_type.startswith("text/event-stream")


@dataclass
class ReceivedRequest:
    """A request the server received, with the body JSON-decoded when possible."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    raw_body: bytes
    body: Any
    interaction: Interaction | None = None


def _text(value: Any) -> str:
    # Cassette header values are lists of str; one LangChain cassette has a !!binary (bytes) value.
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def _maybe_json(raw: Any) -> Any:
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    try:
        return json.loads(text)
    except ValueError:
        return text


@functools.lru_cache(maxsize=256)
def _parse_yaml(path: str) -> Any:
    # The C loader is ~10x faster; both are "safe" loaders (!!binary becomes bytes).
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=loader)


def load_cassette(path: str | Path) -> list[Interaction]:
    """Parse one VCR cassette; relative paths are resolved against :func:`fixtures_dir`."""
    full = Path(path)
    if not full.is_absolute():
        full = fixtures_dir() / full
    data = _parse_yaml(str(full.resolve()))
    interactions = []
    for i, item in enumerate(data.get("interactions") or []):
        request, response = item["request"], item["response"]
        body = response.get("body") or {}
        raw = body.get("string", b"")
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        status = response.get("status") or {}
        headers = [
            (str(name), _text(value))
            for name, value in (response.get("headers") or {}).items()
            if str(name).lower() not in _SKIPPED_RESPONSE_HEADERS
        ]
        interactions.append(
            Interaction(
                cassette=str(path),
                index=i,
                method=str(request.get("method", "GET")).upper(),
                path=urlsplit(str(request["uri"])).path,
                status=int(status.get("code", 200)),
                reason=str(status.get("message", "")),
                headers=headers,
                body=raw,
                request_body=_maybe_json(request.get("body")),
            )
        )
    return interactions


def _sse_events(body: bytes) -> Iterator[bytes]:
    """Split an SSE body after each blank line (LF LF or CRLF CRLF), keeping the bytes intact."""
    start = 0
    i = 0
    n = len(body)
    while i < n:
        if body.startswith(b"\r\n\r\n", i):
            end = i + 4
        elif body.startswith(b"\n\n", i):
            end = i + 2
        else:
            i += 1
            continue
        yield body[start:end]
        start = i = end
    if start < n:
        yield body[start:]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that drops a connection (a stream closed early) is a scenario under test.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _last_segment(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


class ReplayServer:
    """Serves recorded interactions on 127.0.0.1 on a free port, from a background thread.

    ``repeat=True`` starts over once every interaction has been served (for benchmarks).
    """

    def __init__(self, cassettes: Iterable[str | Path] = (), *, repeat: bool = False) -> None:
        self.interactions: list[Interaction] = []
        self.requests: list[ReceivedRequest] = []
        self.unmatched: list[ReceivedRequest] = []
        self.repeat = repeat
        self._used: set[int] = set()
        self._lock = threading.Lock()
        for cassette in cassettes:
            self.add(cassette)
        self._httpd = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self._thread: threading.Thread | None = None

    # -- set-up -------------------------------------------------------------------------------
    def add(self, cassette: str | Path) -> ReplayServer:
        with self._lock:
            self.interactions.extend(load_cassette(cassette))
        return self

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ReplayServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="replay-server",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inspection ---------------------------------------------------------------------------
    @property
    def unused(self) -> list[Interaction]:
        with self._lock:
            return [it for i, it in enumerate(self.interactions) if i not in self._used]

    # -- matching -----------------------------------------------------------------------------
    def match(self, method: str, path: str) -> Interaction | None:
        """Next unused interaction: exact path first, else same last path segment.

        The fallback lets e.g. a Gemini API-key client (``/v1beta/models/m:generateContent``)
        replay a Vertex AI recording (``/v1beta1/projects/.../models/m:generateContent``).
        """
        with self._lock:
            found = self._find(method, path)
            if found is None and self.repeat and self._used:
                self._used.clear()
                found = self._find(method, path)
            if found is None:
                return None
            self._used.add(found)
            return self.interactions[found]

    def _find(self, method: str, path: str) -> int | None:
        candidates = [
            i
            for i, it in enumerate(self.interactions)
            if i not in self._used and it.method == method
        ]
        for i in candidates:
            if self.interactions[i].path == path:
                return i
        segment = _last_segment(path)
        for i in candidates:
            if _last_segment(self.interactions[i].path) == segment:
                return i
        return None


def _make_handler(server: ReplayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the real APIs; SSE uses chunked encoding

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm
            # and the client's delayed ACK add ~40 ms to every response.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _handle(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            received = ReceivedRequest(
                method=self.command,
                path=split.path,
                query=split.query,
                headers={k.lower(): v for k, v in self.headers.items()},
                raw_body=raw,
                body=_maybe_json(raw) if raw else None,
            )
            interaction = server.match(self.command, split.path)
            received.interaction = interaction
            with server._lock:
                server.requests.append(received)
                if interaction is None:
                    server.unmatched.append(received)
            if interaction is None:
                self._send_no_match(split.path)
            elif interaction.is_event_stream:
                self._send_stream(interaction)
            else:
                self._send_whole(interaction)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        def _send_status_and_headers(self, interaction: Interaction) -> None:
            self.send_response(interaction.status, interaction.reason or None)
            for name, value in interaction.headers:
                self.send_header(name, value)

        def _send_whole(self, interaction: Interaction) -> None:
            self._send_status_and_headers(interaction)
            self.send_header("Content-Length", str(len(interaction.body)))
            self.end_headers()
            self.wfile.write(interaction.body)
            self.wfile.flush()

        def _send_stream(self, interaction: Interaction) -> None:
            self._send_status_and_headers(interaction)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for event in _sse_events(interaction.body):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except ConnectionError:
                # The client closed the stream early: that is a scenario under test, not an error.
                self.close_connection = True

        def _send_no_match(self, path: str) -> None:
            body = json.dumps(
                {"error": {"message": f"replay: no recorded interaction for {self.command} {path}"}}
            ).encode()
            self.send_response(NO_MATCH_STATUS)
            self.send_header("Content-Type", "application/json")
            self.send_header("x-should-retry", "false")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@dataclass
class ReplayFactory:
    """What the ``replay`` fixture returns: call it with cassette paths to get a started server."""

    servers: list[ReplayServer] = field(default_factory=list)

    def __call__(self, *cassettes: str | Path, repeat: bool = False) -> ReplayServer:
        server = ReplayServer(cassettes, repeat=repeat).start()
        self.servers.append(server)
        return server

    def close(self) -> None:
        for server in self.servers:
            server.close()
        self.servers.clear()
