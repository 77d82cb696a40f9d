-- Table spans: one row per span, LLM call or not, so that span trees and node roll-ups work.
-- Typed columns for what is queried; the remaining attributes as JSON (SPEC §6).
CREATE TABLE IF NOT EXISTS spans (
    trace_id              VARCHAR NOT NULL,   -- 32 lowercase hex characters
    span_id               VARCHAR NOT NULL,   -- 16 lowercase hex characters
    parent_span_id        VARCHAR,            -- NULL for a root span
    name                  VARCHAR,
    kind                  VARCHAR,            -- INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER, UNSPECIFIED
    service_name          VARCHAR,
    scope_name            VARCHAR,
    start_time            TIMESTAMPTZ NOT NULL,
    end_time              TIMESTAMPTZ,
    duration_ms           DOUBLE,
    status_code           VARCHAR,            -- UNSET, OK, ERROR
    status_message        VARCHAR,
    operation             VARCHAR,            -- gen_ai.operation.name; NULL for non-LLM spans
    provider              VARCHAR,            -- gen_ai.provider.name
    request_model         VARCHAR,
    response_model        VARCHAR,
    input_tokens          BIGINT,             -- including cached input
    output_tokens         BIGINT,             -- including reasoning
    cache_read_tokens     BIGINT,
    cache_creation_tokens BIGINT,
    reasoning_tokens      BIGINT,
    cost_usd              DECIMAL(18, 10),    -- NULL when no price is known, never 0 for "unknown"
    cost_source           VARCHAR,            -- provider | local
    usage_estimated       BOOLEAN,
    pricing_ref           VARCHAR,
    node                  VARCHAR,            -- the span's own node; llm_calls resolves ancestors
    user_id               VARCHAR,
    tenant                VARCHAR,
    session_id            VARCHAR,
    conversation_id       VARCHAR,
    correlation_id        VARCHAR,
    job_type              VARCHAR,            -- NULL for interactive requests
    attributes            JSON,
    resource_attributes   JSON,
    received_at           TIMESTAMPTZ
);
