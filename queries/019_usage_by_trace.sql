-- usage_by_trace: what did each request (trace) cost, and which correlation id, user and root
-- span does it belong to? One row per trace holding at least one LLM call. root_span, service
-- and duration come from the trace's root span (no parent); while the root has not arrived,
-- from the calls (service of a call; duration from the first call's start to the last end).
-- Read from the per-trace summary kept at append time (queries/016_trace_usage.sql), not from
-- spans: a trace_usage row as it is when its trace has no unfolded parts, else the sum of the
-- row and the parts. (This view was 007_usage_by_trace.sql, which read spans directly; it is
-- defined after the tables it reads.)
CREATE OR REPLACE VIEW usage_by_trace AS
WITH traces AS (
    SELECT * FROM trace_usage
    WHERE trace_id NOT IN (SELECT trace_id FROM trace_usage_parts)
    UNION ALL BY NAME
    SELECT * FROM trace_usage_with_parts
)
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
    CAST(coalesce(input_tokens, 0) AS BIGINT) AS input_tokens,
    CAST(coalesce(output_tokens, 0) AS BIGINT) AS output_tokens,
    CAST(coalesce(cache_read_tokens, 0) AS BIGINT) AS cache_read_tokens,
    CAST(coalesce(cache_creation_tokens, 0) AS BIGINT) AS cache_creation_tokens,
    CAST(coalesce(reasoning_tokens, 0) AS BIGINT) AS reasoning_tokens,
    CAST(coalesce(input_tokens, 0) + coalesce(output_tokens, 0) AS BIGINT) AS total_tokens,
    -- NULL when no call is priced, never 0 (a reprice correction can cancel a sum to 0)
    CASE WHEN calls > unpriced_calls THEN cost_usd END AS cost_usd,
    unpriced_calls
FROM traces
WHERE calls > 0;
