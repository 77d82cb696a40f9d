-- usage_by_trace: what did each request (trace) cost, and which correlation id, user and root
-- span does it belong to? One row per trace holding at least one LLM call. root_span, service
-- and duration come from the trace's root span (no parent); while the root has not arrived,
-- from the calls (service of a call; duration from the first call's start to the last end).
-- Read from the per-trace summary (queries/016_trace_usage.sql) and what was added to it
-- since its last fold, not by grouping 10 M spans. (This view was 007_usage_by_trace.sql,
-- which grouped the spans; it is defined after the tables it reads.)
CREATE OR REPLACE VIEW usage_by_trace AS
SELECT
    trace_id,
    correlation_id,
    root_span,
    coalesce(root_service_name, service_name) AS service_name,
    user_id,
    tenant,
    job_type,
    start_time,
    coalesce(
        root_duration_ms,
        CAST(epoch_us(end_time) - epoch_us(start_time) AS DOUBLE) / 1000
    ) AS duration_ms,
    calls,
    input_tokens,
    output_tokens,
    cache_read_tokens,
    cache_creation_tokens,
    reasoning_tokens,
    input_tokens + output_tokens AS total_tokens,
    -- NULL when no call is priced, never 0 (a reprice correction can cancel a sum to 0)
    CASE WHEN calls > unpriced_calls THEN cost_usd END AS cost_usd,
    unpriced_calls
FROM (
    -- the traces nothing was added to since the last fold, as they are (most of them)
    SELECT * FROM trace_usage WHERE trace_id NOT IN (SELECT trace_id FROM trace_usage_added)
    UNION ALL BY NAME
    SELECT * FROM trace_usage_combined('trace_usage', 'trace_usage_added')
)
WHERE calls > 0;
