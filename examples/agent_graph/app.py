"""A small mailbox assistant built as a graph of LLM nodes, instrumented with zero code.

Run it under ``opentelemetry-instrument`` (``otel-tokens demo`` does, against a local fake
provider); the app itself never configures OpenTelemetry. It only says *who* is asking and
*which node* is running, with ``otel_tokens.usage_context`` / ``node`` / ``background_job``;
the otel-tokens instrumentors turn every SDK call into a span with tokens and cost.

Graph per question:  intent_classification (OpenAI chat) → retrieval (OpenAI embeddings)
→ answer_generation (Anthropic or OpenAI, streamed) → fact_extraction (Gemini).
Background job ``ingest_emails``: summarize_email (a self-hosted model behind an
OpenAI-compatible API, which has no public price) → index_email (OpenAI embeddings).

Who asks what is in ``scenario.json`` next to this file (or the file given as argument).
"""

from __future__ import annotations

import json
import math
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import openai
from google import genai
from google.genai import types as genai_types
from opentelemetry import trace

import otel_tokens

HERE = Path(__file__).resolve().parent
INTENTS = ("billing", "logistics", "legal", "support", "other")
ANSWER_SYSTEM = (
    "You are the mailbox assistant of a small company. Answer the user's question only from the "
    "email summaries you are given, cite the email you used, and say so when the mailbox does not "
    "contain the answer. Keep answers under five sentences and never invent dates or amounts. "
) * 3  # long and shared by every request of a tenant: worth caching on Anthropic

tracer = trace.get_tracer("examples.agent_graph")


@dataclass
class Mailbox:
    """One tenant's indexed emails: summary text and its embedding."""

    summaries: list[str] = field(default_factory=list)
    vectors: list[list[float]] = field(default_factory=list)


class Clients:
    """The three provider SDKs, configured only from the environment (base URLs and keys)."""

    def __init__(self) -> None:
        self.openai = openai.OpenAI(max_retries=1, timeout=30)
        self.anthropic = anthropic.Anthropic(max_retries=1, timeout=30)
        self.gemini = genai.Client()


def _headers(correlation_id: str) -> dict[str, str]:
    # Providers log this header, so their bills can be reconciled with our traces.
    return {"X-Correlation-Id": correlation_id}


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


# --- background job --------------------------------------------------------------------------
@otel_tokens.node("summarize_email")
def summarize_email(clients: Clients, model: str, email: str, correlation_id: str) -> str:
    response = clients.openai.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "Summarise the email in one sentence."},
            {"role": "user", "content": email},
        ],
        max_tokens=60,
        extra_headers=_headers(correlation_id),
    )
    return response.choices[0].message.content or ""


@otel_tokens.node("index_email")
def index_email(clients: Clients, model: str, summary: str, correlation_id: str) -> list[float]:
    response = clients.openai.embeddings.create(
        model=model, input=summary, extra_headers=_headers(correlation_id)
    )
    return list(response.data[0].embedding)


def ingest_emails(clients: Clients, models: dict[str, Any], job: dict[str, Any]) -> Mailbox:
    mailbox = Mailbox()
    cid = job["correlation_id"]
    with tracer.start_as_current_span("job ingest_emails", kind=trace.SpanKind.CONSUMER):
        with otel_tokens.background_job(
            "ingest_emails", user_id=job["user"], tenant=job["tenant"], correlation_id=cid
        ):
            for email in job["emails"]:
                summary = summarize_email(clients, models["summarize_email"]["model"], email, cid)
                vector = index_email(clients, models["index_email"]["model"], summary, cid)
                mailbox.summaries.append(summary + " | " + email)
                mailbox.vectors.append(vector)
    return mailbox


# --- interactive graph -----------------------------------------------------------------------
def classify_intent(clients: Clients, model: str, question: str, cid: str) -> str:
    with otel_tokens.node("intent_classification"):
        response = clients.openai.chat.completions.create(
            model=model,
            messages=[
                {
                    "role": "system",
                    "content": "Classify the intent as one of: " + ", ".join(INTENTS),
                },
                {"role": "user", "content": question},
            ],
            temperature=0,
            extra_headers=_headers(cid),
        )
    text = (response.choices[0].message.content or "").lower()
    return next((intent for intent in INTENTS if intent in text), "other")


def retrieve(clients: Clients, model: str, mailbox: Mailbox, question: str, cid: str) -> list[str]:
    with otel_tokens.node("retrieval"):
        response = clients.openai.embeddings.create(
            model=model, input=question, extra_headers=_headers(cid)
        )
    query = list(response.data[0].embedding)
    ranked = sorted(
        zip(mailbox.summaries, mailbox.vectors, strict=True),
        key=lambda item: _cosine(query, item[1]),
        reverse=True,
    )
    return [summary for summary, _ in ranked[:2]]


def generate_answer(
    clients: Clients, choice: dict[str, str], question: str, context: list[str], cid: str
) -> str:
    prompt = "Emails:\n" + "\n".join(f"- {c}" for c in context) + f"\n\nQuestion: {question}"
    with otel_tokens.node("answer_generation"):
        if choice["provider"] == "anthropic":
            with clients.anthropic.messages.stream(
                model=choice["model"],
                max_tokens=400,
                system=[
                    {"type": "text", "text": ANSWER_SYSTEM, "cache_control": {"type": "ephemeral"}}
                ],
                messages=[{"role": "user", "content": prompt}],
                extra_headers=_headers(cid),
            ) as stream:
                return "".join(stream.text_stream)
        # OpenAI streaming without stream_options: otel-tokens asks for usage itself and hides
        # the usage-only final chunk, so indexing choices[0] below stays safe.
        pieces = []
        for chunk in clients.openai.chat.completions.create(
            model=choice["model"],
            messages=[
                {"role": "system", "content": ANSWER_SYSTEM},
                {"role": "user", "content": prompt},
            ],
            max_tokens=400,
            stream=True,
            extra_headers=_headers(cid),
        ):
            pieces.append(chunk.choices[0].delta.content or "")
        return "".join(pieces)


@otel_tokens.node("fact_extraction")
def extract_facts(clients: Clients, model: str, answer: str, cid: str) -> str:
    response = clients.gemini.models.generate_content(
        model=model,
        contents="List the facts (dates, amounts, names) stated in this text:\n" + answer,
        config=genai_types.GenerateContentConfig(
            http_options=genai_types.HttpOptions(headers=_headers(cid))
        ),
    )
    return response.text or ""


def answer_question(
    clients: Clients, models: dict[str, Any], mailboxes: dict[str, Mailbox], req: dict[str, Any]
) -> str:
    cid = req["correlation_id"]
    tenant = req["tenant"]
    # In a web app this would be the framework's server span; here the graph makes its own.
    with tracer.start_as_current_span("POST /ask", kind=trace.SpanKind.SERVER):
        with otel_tokens.usage_context(
            user_id=req["user"],
            correlation_id=cid,
            tenant=tenant,
            session_id=req["session"],
            conversation_id=req["session"],
        ):
            intent = classify_intent(
                clients, models["intent_classification"]["model"], req["question"], cid
            )
            context = retrieve(
                clients, models["retrieval"]["model"], mailboxes[tenant], req["question"], cid
            )
            answer = generate_answer(
                clients, models["answer_generation"][tenant], req["question"], context, cid
            )
            extract_facts(clients, models["fact_extraction"]["model"], answer, cid)
    return intent


def main(argv: list[str]) -> int:
    scenario_path = Path(argv[1]) if len(argv) > 1 else HERE / "scenario.json"
    scenario = json.loads(scenario_path.read_text(encoding="utf-8"))
    models = scenario["models"]
    clients = Clients()
    mailboxes: dict[str, Mailbox] = {}
    for job in scenario["ingest_jobs"]:
        mailboxes[job["tenant"]] = ingest_emails(clients, models, job)
        print(
            f"[agent_graph] ingest_emails {job['correlation_id']}: {len(job['emails'])} emails",
            flush=True,
        )
    # Several users at once: each worker thread enters its own usage_context.
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [
            (req, pool.submit(answer_question, clients, models, mailboxes, req))
            for req in scenario["requests"]
        ]
        for req, future in futures:
            intent = future.result()
            print(
                f"[agent_graph] {req['correlation_id']} {req['user']}: intent={intent}", flush=True
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
