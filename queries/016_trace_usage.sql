-- Tables trace_usage and trace_usage_parts: the per-trace summary behind usage_by_trace,
-- because grouping 10 M spans by trace at query time takes seconds.
--   trace_usage        one row per trace: its usage as of the last fold. Every
--                      store.FOLD_SPANS_AT appended spans, store.append_spans folds what was
--                      added since (trace_usage_added) into it, in the same transaction.
--   trace_usage_parts  additions that are not spans: the cost corrections of
--                      `otel-tokens reprice` for calls already folded (calls = 0).
-- What the spans appended since the last fold add is read from the spans themselves
-- (unfolded_trace_usage, queries/018_span_batches.sql). usage_by_trace combines the three, so
-- it is exact at every moment. Filled from the stored spans when applied (store.migrate).
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
    input_tokens          BIGINT,           -- sums over the calls (0 when none reported)
    output_tokens         BIGINT,
    cache_read_tokens     BIGINT,
    cache_creation_tokens BIGINT,
    reasoning_tokens      BIGINT,
    cost_usd              DECIMAL(38, 10),  -- sum of the priced calls' cost
    unpriced_calls        BIGINT NOT NULL   -- calls with cost_usd NULL
);
CREATE TABLE IF NOT EXISTS trace_usage_parts AS FROM trace_usage LIMIT 0;
