"""Pure functions from OpenAI responses, chunks and requests to Usage and response fields."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from otel_tokens.usage import Usage, estimate_tokens


def field(obj: Any, name: str) -> Any:
    """``obj.name`` for SDK models, ``obj[name]`` for dicts, else None."""
    if type(obj) is dict:
        return obj.get(name)
    return getattr(obj, name, None)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _count(value: Any) -> int | None:
    """``value`` if it is an int (not a bool), else None."""
    return value if type(value) is int else _int(value)


def _usage(usage: Any, inp: str, out: str, inp_details: str, out_details: str) -> Usage | None:
    if usage is None:
        return None
    # One branch for dicts, plain attribute reads for SDK models (the common case).
    if type(usage) is dict:
        input_tokens, output_tokens = usage.get(inp), usage.get(out)
        cached_in, reasoning_out = usage.get(inp_details), usage.get(out_details)
    else:
        input_tokens = getattr(usage, inp, None)
        output_tokens = getattr(usage, out, None)
        cached_in = getattr(usage, inp_details, None)
        reasoning_out = getattr(usage, out_details, None)
    if type(input_tokens) is not int:
        input_tokens = _int(input_tokens)
    if type(output_tokens) is not int:
        output_tokens = _int(output_tokens)
    if input_tokens is None and output_tokens is None:
        return None
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=None if cached_in is None else _count(field(cached_in, "cached_tokens")),
        reasoning_tokens=(
            None if reasoning_out is None else _count(field(reasoning_out, "reasoning_tokens"))
        ),
    )


def chat_usage(usage: Any) -> Usage | None:
    """Chat Completions ``usage``: prompt/completion tokens, cached and reasoning details."""
    return _usage(
        usage, "prompt_tokens", "completion_tokens", "prompt_tokens_details",
        "completion_tokens_details",
    )  # fmt: skip


def responses_usage(usage: Any) -> Usage | None:
    """Responses API ``usage``: input/output tokens (reasoning is inside output)."""
    return _usage(
        usage, "input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details"
    )


def embeddings_usage(usage: Any) -> Usage | None:
    """Embeddings ``usage``: input tokens only (an embedding has no output tokens)."""
    if usage is None:
        return None
    tokens = _int(field(usage, "prompt_tokens"))
    if tokens is None:
        tokens = _int(field(usage, "total_tokens"))
    return None if tokens is None else Usage(input_tokens=tokens)


USAGE_OF_KIND = {"chat": chat_usage, "responses": responses_usage, "embeddings": embeddings_usage}


def chat_finish_reasons(choices: Any) -> list[str]:
    reasons = []
    for choice in choices or ():
        reason = field(choice, "finish_reason")
        if reason:
            reasons.append(str(reason))
    return reasons


def responses_finish_reasons(response: Any) -> list[str]:
    status = field(response, "status")
    return [str(status)] if status else []


def _texts(value: Any) -> Iterable[str]:
    """Every string in a request's messages / input, however nested (for estimates)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in ("role", "type", "name", "id", "tool_call_id", "format"):
                continue
            yield from _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)


def estimate_input_tokens(kind: str, kwargs: dict[str, Any]) -> int:
    """Estimated input tokens of a request (no tokenizer download: ~4 characters per token)."""
    if kind == "chat":
        parts: Any = kwargs.get("messages")
    elif kind == "responses":
        parts = [kwargs.get("instructions"), kwargs.get("input")]
    else:
        parts = kwargs.get("input")
    return sum(estimate_tokens(text) for text in _texts(parts))


def estimate_usage(kind: str, kwargs: dict[str, Any], output_text: str | None) -> Usage:
    """An estimate for a call whose response reported no usage, flagged ``estimated``."""
    output = None if kind == "embeddings" else estimate_tokens(output_text or "")
    return Usage(
        input_tokens=estimate_input_tokens(kind, kwargs), output_tokens=output, estimated=True
    )


def chat_output_text(choices: Any) -> str:
    parts = []
    for choice in choices or ():
        content = field(field(choice, "message"), "content")
        if isinstance(content, str):
            parts.append(content)
    return "".join(parts)


def responses_output_text(response: Any) -> str:
    text = field(response, "output_text")
    return text if isinstance(text, str) else ""
