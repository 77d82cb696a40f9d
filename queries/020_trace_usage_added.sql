-- trace_usage_added: what has been added to each trace since trace_usage was last folded?
-- One row per trace touched by an unfolded span (unfolded_trace_usage) or a trace_usage_parts
-- row, in the columns of trace_usage: the additions summed (calls, tokens, cost; 0 when none),
-- min/max (times) or any non-NULL value (ids, root span). usage_by_trace and the fold in
-- store.append_spans combine it with trace_usage (trace_usage_combined).
CREATE OR REPLACE VIEW trace_usage_added AS
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
    CAST(coalesce(sum(calls), 0) AS BIGINT) AS calls,
    CAST(coalesce(sum(input_tokens), 0) AS BIGINT) AS input_tokens,
    CAST(coalesce(sum(output_tokens), 0) AS BIGINT) AS output_tokens,
    CAST(coalesce(sum(cache_read_tokens), 0) AS BIGINT) AS cache_read_tokens,
    CAST(coalesce(sum(cache_creation_tokens), 0) AS BIGINT) AS cache_creation_tokens,
    CAST(coalesce(sum(reasoning_tokens), 0) AS BIGINT) AS reasoning_tokens,
    CAST(coalesce(sum(cost_usd), 0) AS DECIMAL(38, 10)) AS cost_usd,
    CAST(coalesce(sum(unpriced_calls), 0) AS BIGINT) AS unpriced_calls
FROM (
    SELECT * FROM unfolded_trace_usage
    UNION ALL BY NAME
    SELECT * FROM trace_usage_parts
)
GROUP BY trace_id;
