-- trace_usage_with_parts: for the traces that trace_usage_parts touches, what is their usage so
-- far? One row per such trace, in the columns of trace_usage: its trace_usage row (when it has
-- one) and its parts added up. usage_by_trace reads it for these traces; store.append_spans
-- writes it back into trace_usage when it folds the parts (see 016_trace_usage.sql).
CREATE OR REPLACE VIEW trace_usage_with_parts AS
SELECT
    trace_id,
    any_value(correlation_id) AS correlation_id,
    any_value(user_id) AS user_id,
    any_value(tenant) AS tenant,
    any_value(job_type) AS job_type,
    any_value(root_span) AS root_span,
    any_value(root_service_name) AS root_service_name,
    any_value(root_duration_ms) AS root_duration_ms,
    any_value(service_name) AS service_name,
    min(start_time) AS start_time,
    max(end_time) AS end_time,
    CAST(sum(calls) AS BIGINT) AS calls,
    CAST(sum(input_tokens) AS BIGINT) AS input_tokens,
    CAST(sum(output_tokens) AS BIGINT) AS output_tokens,
    CAST(sum(cache_read_tokens) AS BIGINT) AS cache_read_tokens,
    CAST(sum(cache_creation_tokens) AS BIGINT) AS cache_creation_tokens,
    CAST(sum(reasoning_tokens) AS BIGINT) AS reasoning_tokens,
    sum(cost_usd) AS cost_usd,
    CAST(sum(unpriced_calls) AS BIGINT) AS unpriced_calls
FROM (
    SELECT * FROM trace_usage WHERE trace_id IN (SELECT trace_id FROM trace_usage_parts)
    UNION ALL
    SELECT * FROM trace_usage_parts
)
GROUP BY trace_id;
