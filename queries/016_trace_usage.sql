-- Tables trace_usage and trace_usage_parts: the per-trace summary behind usage_by_trace,
-- maintained when spans are appended, because grouping 10 M spans by trace at query time
-- takes seconds.
--   trace_usage_parts  one row per (append, trace): what the rows NEW in that append add to
--                      the trace (queries.store.append_spans inserts them in the same
--                      transaction, from trace_usage_of(); reprice adds cost corrections).
--                      Append-only, so appending stays cheap.
--   trace_usage        one row per trace: the parts already folded together. Every
--                      store.COMPACT_AT parts, append_spans folds the parts of the traces they
--                      touch into trace_usage and empties trace_usage_parts.
-- usage_by_trace reads a trace_usage row as it is when the trace has no parts, else adds them
-- up. The columns are sums, minima or "any non-NULL value" so that parts add up exactly in any
-- order. Filled from the stored spans when this migration is applied (store.migrate).
CREATE TABLE IF NOT EXISTS trace_usage (
    trace_id              VARCHAR NOT NULL,
    correlation_id        VARCHAR,          -- any non-NULL value of the trace's calls and roots
    user_id               VARCHAR,          -- idem
    tenant                VARCHAR,          -- idem
    job_type              VARCHAR,          -- idem
    root_span             VARCHAR,          -- name of the root span (no parent), once it arrived
    root_service_name     VARCHAR,          -- its service
    root_duration_ms      DOUBLE,           -- its duration
    service_name          VARCHAR,          -- any service of the calls, while no root
    start_time            TIMESTAMPTZ,      -- min over the calls and roots
    end_time              TIMESTAMPTZ,      -- max over the calls and roots
    calls                 BIGINT NOT NULL,  -- LLM calls (is_llm_call)
    input_tokens          BIGINT,           -- sums over the calls (NULL when none reported)
    output_tokens         BIGINT,
    cache_read_tokens     BIGINT,
    cache_creation_tokens BIGINT,
    reasoning_tokens      BIGINT,
    cost_usd              DECIMAL(38, 10),  -- sum of the priced calls' cost
    unpriced_calls        BIGINT NOT NULL   -- calls with cost_usd NULL
);
CREATE TABLE IF NOT EXISTS trace_usage_parts AS FROM trace_usage LIMIT 0;
