"""A local stand-in for the OpenAI, Anthropic and Gemini HTTP APIs, with deterministic usage.

The demo and the end-to-end tests point the real provider SDKs at this server (127.0.0.1 only,
no keys checked), so no network and no money is needed. Token counts are derived from the
request, the way a real API counts them, but reproducibly:

- input tokens: ``estimate_tokens`` (≈ 4 characters per token) of all prompt text;
- the reply is a fixed sentence cut to a length chosen from a hash of the prompt (capped by
  ``max_tokens``), and output tokens are ``estimate_tokens`` of the reply;
- Gemini 2.5 models also "think": ``thoughts = output // 2 + 16`` (reported apart from
  candidates, as Gemini does); OpenAI ``o*`` models report the same as reasoning tokens;
- Anthropic system blocks marked ``cache_control`` are written to the prompt cache on first
  sight (``cache_creation_input_tokens``) and read from it afterwards (``cache_read_input_tokens``).

Every answered call is appended to ``ledger`` (and to a JSON-lines file when one is given) in the
semantic-convention sense (input includes cache, output includes reasoning), together with the
``X-Correlation-Id`` request header, so a test can reconcile what the provider "billed" with what
otel-tokens recorded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from otel_tokens.usage import estimate_tokens

_REPLY = (
    "Based on the documents you shared, the short answer is yes: the invoice was sent on time, "
    "the customer confirmed receipt, and the remaining balance is due at the end of the month. "
    "I also found two related emails about the delivery schedule, which moved by one week, and a "
    "note from finance asking to align the payment terms with the new contract before renewal. "
    "If you want, I can draft a reply that summarises these points and proposes a call next week."
)
_REPLY_WORDS = _REPLY.split()
_CREATED = 1_750_000_000  # a fixed "created" timestamp keeps responses byte-for-byte stable

# Dated snapshot names the real APIs answer with.
_RESPONSE_MODELS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
}


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One call the fake provider answered, with the usage it reported (semconv sense)."""

    provider: str
    endpoint: str
    model: str
    stream: bool
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    correlation_id: str | None = None
    include_usage: bool | None = None  # OpenAI streams: did the request ask for usage?


@dataclass
class _Reply:
    text: str
    input_tokens: int  # provider's own counting (Anthropic: without cache)
    output_tokens: int  # provider's own counting (Gemini: without thoughts)
    reasoning_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


_CHOICES = re.compile(r"\bone of:\s*([\w-]+(?:\s*,\s*[\w-]+)+)", re.IGNORECASE)


def reply_for(prompt: str, max_tokens: int | None = None) -> str:
    """The deterministic reply to a prompt: 8 to 67 words of a fixed answer.

    A prompt that asks for "one of: a, b, c" (a classifier) gets one of those words instead.
    """
    if m := _CHOICES.search(prompt):
        options = [o.strip() for o in m.group(1).split(",")]
        return options[_digest(prompt) % len(options)]
    words = 8 + _digest(prompt) % 60
    text = " ".join(_REPLY_WORDS[: min(words, len(_REPLY_WORDS))])
    if max_tokens is not None and max_tokens > 0:
        text = text[: max_tokens * 4]
    return text


def _text_of(content: Any) -> str:
    """Text of an OpenAI / Anthropic / Gemini content value (str, list of parts, dict)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(t for t in (_text_of(part) for part in content) if t)
    if isinstance(content, dict):
        if isinstance(content.get("text"), str):
            return str(content["text"])
        for key in ("content", "parts"):
            if key in content:
                return _text_of(content[key])
    return ""


def _chunks(text: str, n: int = 6) -> list[str]:
    """Split a reply into stream deltas that concatenate back to it."""
    words = text.split(" ")
    size = max(1, len(words) // n)
    parts = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [p if i == 0 else " " + p for i, p in enumerate(parts)]


class FakeProvider:
    """The server; ``start()`` binds 127.0.0.1 (port 0 = a free port) and serves in a thread."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, ledger_path: str | Path | None = None
    ) -> None:
        self._host = host
        self._port = port
        self._ledger_path = Path(ledger_path) if ledger_path else None
        self._lock = threading.Lock()
        self._prompt_cache: set[str] = set()
        self.ledger: list[LedgerEntry] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeProvider:
        provider = self

        class Handler(_Handler):
            fake = provider

        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-provider", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def sdk_environment(self) -> dict[str, str]:
        """Environment variables that point the openai, anthropic and google-genai SDKs here."""
        return {
            "OPENAI_BASE_URL": f"{self.url}/v1",
            "OPENAI_API_KEY": "sk-demo-not-a-real-key",
            "ANTHROPIC_BASE_URL": self.url,
            "ANTHROPIC_API_KEY": "sk-ant-demo-not-a-real-key",
            "GOOGLE_GEMINI_BASE_URL": self.url,
            "GEMINI_API_KEY": "demo-not-a-real-key",
        }

    # -- accounting -----------------------------------------------------------------------
    def _record(self, entry: LedgerEntry) -> None:
        with self._lock:
            self.ledger.append(entry)
            if self._ledger_path is not None:
                with self._ledger_path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(asdict(entry)) + "\n")

    def _cache_lookup(self, key: str) -> bool:
        """True when the prefix was cached before; caches it now either way."""
        with self._lock:
            hit = key in self._prompt_cache
            self._prompt_cache.add(key)
            return hit


def load_ledger(path: str | Path) -> list[LedgerEntry]:
    """Read a ledger JSON-lines file written by a ``FakeProvider``."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [LedgerEntry(**json.loads(line)) for line in lines if line.strip()]


_GEMINI_PATH = re.compile(
    r"^/(v1beta|v1|v1alpha)/models/([^/:]+):(generateContent|streamGenerateContent)$"
)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeProvider
    protocol_version = "HTTP/1.1"
    server_version = "otel-tokens-fake-provider/1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the demo prints its own
        pass

    # -- plumbing -------------------------------------------------------------------------
    def _send_json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_sse(self, events: Iterator[str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for event in events:
            data = event.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        self._send_json(status, {"error": {"message": message, "type": kind}})

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("", "/healthz"):
            self._send_json(200, {"status": "ok"})
        else:
            self._error(404, f"no such endpoint: GET {self.path}", "not_found_error")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as exc:
            self._error(400, f"request body is not valid JSON: {exc}")
            return
        path = self.path.split("?", 1)[0]
        correlation_id = self.headers.get("X-Correlation-Id")
        if path in ("/v1/chat/completions", "/chat/completions"):
            self._openai_chat(body, correlation_id)
        elif path in ("/v1/embeddings", "/embeddings"):
            self._openai_embeddings(body, correlation_id)
        elif path == "/v1/messages":
            self._anthropic_messages(body, correlation_id)
        elif m := _GEMINI_PATH.match(path):
            self._gemini(m.group(2), m.group(3) == "streamGenerateContent", body, correlation_id)
        else:
            self._error(404, f"no such endpoint: POST {path}", "not_found_error")

    # -- OpenAI ---------------------------------------------------------------------------
    def _openai_chat(self, body: dict[str, Any], correlation_id: str | None) -> None:
        model = str(body.get("model") or "")
        messages = body.get("messages") or []
        if not model or not isinstance(messages, list) or not messages:
            self._error(400, "model and messages are required")
            return
        prompt = "\n".join(_text_of(m) for m in messages if isinstance(m, dict))
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        text = reply_for(prompt, max_tokens if isinstance(max_tokens, int) else None)
        output = estimate_tokens(text)
        reasoning = output // 2 + 16 if model.startswith("o") else 0
        prompt_tokens = estimate_tokens(prompt)
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": output + reasoning,
            "total_tokens": estimate_tokens(prompt) + output + reasoning,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        response_id = f"chatcmpl-{_digest(prompt + model):016x}"
        response_model = _RESPONSE_MODELS.get(model, model)
        stream = bool(body.get("stream"))
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        self.fake._record(
            LedgerEntry(
                provider="openai",
                endpoint="chat.completions",
                model=model,
                stream=stream,
                input_tokens=prompt_tokens,
                output_tokens=output + reasoning,
                reasoning_tokens=reasoning,
                correlation_id=correlation_id,
                include_usage=include_usage if stream else None,
            )
        )
        if not stream:
            self._send_json(
                200,
                {
                    "id": response_id,
                    "object": "chat.completion",
                    "created": _CREATED,
                    "model": response_model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text, "refusal": None},
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                    "service_tier": "default",
                    "system_fingerprint": "fp_demo",
                },
            )
            return

        def chunk(choices: list[Any], chunk_usage: Any = None) -> str:
            payload: dict[str, Any] = {
                "id": response_id,
                "object": "chat.completion.chunk",
                "created": _CREATED,
                "model": response_model,
                "system_fingerprint": "fp_demo",
                "choices": choices,
            }
            if include_usage:
                payload["usage"] = chunk_usage
            return f"data: {json.dumps(payload)}\n\n"

        def events() -> Iterator[str]:
            yield chunk(
                [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
            )
            for piece in _chunks(text):
                yield chunk([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
            yield chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
            if include_usage:  # the usage-only final chunk, exactly as the real API sends it
                yield chunk([], usage)
            yield "data: [DONE]\n\n"

        self._send_sse(events())

    def _openai_embeddings(self, body: dict[str, Any], correlation_id: str | None) -> None:
        model = str(body.get("model") or "")
        raw_input = body.get("input")
        if not model or raw_input is None:
            self._error(400, "model and input are required")
            return
        inputs: list[Any] = raw_input if isinstance(raw_input, list) else [raw_input]
        if inputs and all(isinstance(x, int) for x in inputs):
            inputs = [inputs]  # one pre-tokenised input
        tokens = sum(len(x) if isinstance(x, list) else estimate_tokens(str(x)) for x in inputs)
        requested = body.get("dimensions")
        dims = requested if isinstance(requested, int) and requested > 0 else 8
        data = []
        for i, item in enumerate(inputs):
            seed = _digest(json.dumps(item))
            vector = [((seed >> (k % 48)) % 2000 - 1000) / 1000.0 for k in range(dims)]
            embedding: Any = vector
            if body.get("encoding_format") == "base64":  # the openai SDK's default request
                embedding = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        self.fake._record(
            LedgerEntry(
                provider="openai",
                endpoint="embeddings",
                model=model,
                stream=False,
                input_tokens=tokens,
                output_tokens=0,
                correlation_id=correlation_id,
            )
        )
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    # -- Anthropic ------------------------------------------------------------------------
    def _anthropic_messages(self, body: dict[str, Any], correlation_id: str | None) -> None:
        model = str(body.get("model") or "")
        messages = body.get("messages") or []
        if not model or not isinstance(messages, list) or not messages:
            self._error(400, "model and messages are required")
            return
        system = body.get("system")
        cached_text, plain_system = "", ""
        if isinstance(system, list):
            for block in system:
                if isinstance(block, dict) and block.get("cache_control"):
                    cached_text += _text_of(block)
                else:
                    plain_system += _text_of(block)
        else:
            plain_system = _text_of(system)
        prompt = "\n".join([plain_system, *(_text_of(m) for m in messages if isinstance(m, dict))])
        cache_read = cache_creation = 0
        if cached_text:
            if self.fake._cache_lookup(model + "\0" + cached_text):
                cache_read = estimate_tokens(cached_text)
            else:
                cache_creation = estimate_tokens(cached_text)
        uncached = estimate_tokens(prompt)
        max_tokens = body.get("max_tokens")
        text = reply_for(cached_text + prompt, max_tokens if isinstance(max_tokens, int) else None)
        output = estimate_tokens(text)
        message_id = f"msg_{_digest(cached_text + prompt + model):016x}"
        stream = bool(body.get("stream"))
        self.fake._record(
            LedgerEntry(
                provider="anthropic",
                endpoint="messages",
                model=model,
                stream=stream,
                input_tokens=uncached + cache_read + cache_creation,
                output_tokens=output,
                cache_read_tokens=cache_read,
                cache_creation_tokens=cache_creation,
                correlation_id=correlation_id,
            )
        )
        usage: dict[str, Any] = {
            "input_tokens": uncached,
            "cache_creation_input_tokens": cache_creation,
            "cache_read_input_tokens": cache_read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": cache_creation,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_tokens": output,
            "service_tier": "standard",
        }
        if not stream:
            self._send_json(
                200,
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": usage,
                },
            )
            return

        def event(kind: str, payload: dict[str, Any]) -> str:
            return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n"

        def events() -> Iterator[str]:
            start_usage = {**usage, "output_tokens": 1}  # provisional, as the real API sends
            message: dict[str, Any] = {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            }
            yield event("message_start", {"message": message})
            yield event(
                "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
            )
            yield event("ping", {})
            for piece in _chunks(text):
                yield event(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "text_delta", "text": piece}},
                )
            yield event("content_block_stop", {"index": 0})
            final_usage = {
                "input_tokens": uncached,
                "cache_creation_input_tokens": cache_creation,
                "cache_read_input_tokens": cache_read,
                "output_tokens": output,
            }
            yield event(
                "message_delta",
                {"delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": final_usage},
            )
            yield event("message_stop", {})

        self._send_sse(events())

    # -- Gemini ---------------------------------------------------------------------------
    def _gemini(
        self, model: str, stream: bool, body: dict[str, Any], correlation_id: str | None
    ) -> None:
        contents = body.get("contents")
        if not contents:
            self._error(400, "contents is required")
            return
        system = _text_of(body.get("systemInstruction") or body.get("system_instruction"))
        prompt = "\n".join(t for t in (system, _text_of(contents)) if t)
        config = body.get("generationConfig") or {}
        max_tokens = config.get("maxOutputTokens") if isinstance(config, dict) else None
        text = reply_for(prompt, max_tokens if isinstance(max_tokens, int) else None)
        prompt_tokens = estimate_tokens(prompt)
        candidates = estimate_tokens(text)
        thoughts = candidates // 2 + 16 if "2.5" in model else 0
        self.fake._record(
            LedgerEntry(
                provider="gcp.gemini",
                endpoint="generate_content",
                model=model,
                stream=stream,
                input_tokens=prompt_tokens,
                output_tokens=candidates + thoughts,
                reasoning_tokens=thoughts,
                correlation_id=correlation_id,
            )
        )
        usage: dict[str, Any] = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": candidates,
            "totalTokenCount": prompt_tokens + candidates + thoughts,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
        }
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        response_id = f"{_digest(prompt + model):016x}"

        def response(part: str, finish: bool, with_usage: bool) -> dict[str, Any]:
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": part}]}}
            if finish:
                candidate["finishReason"] = "STOP"
            out: dict[str, Any] = {
                "candidates": [candidate],
                "modelVersion": model,
                "responseId": response_id,
            }
            if with_usage:
                out["usageMetadata"] = usage
            return out

        if not stream:
            self._send_json(200, response(text, True, True))
            return

        def events() -> Iterator[str]:
            pieces = _chunks(text)
            for i, piece in enumerate(pieces):
                last = i == len(pieces) - 1
                yield f"data: {json.dumps(response(piece, last, last))}\r\n\r\n"

        self._send_sse(events())


def main() -> int:
    """Run the fake provider in the foreground: ``python -m otel_tokens.demo.fake_provider``."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free)")
    parser.add_argument("--ledger", help="append every answered call to this JSON-lines file")
    args = parser.parse_args()
    fake = FakeProvider(port=args.port, ledger_path=args.ledger).start()
    print(f"fake provider listening on {fake.url}", flush=True)
    for key, value in fake.sdk_environment().items():
        print(f"export {key}={value}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
