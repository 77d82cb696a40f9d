-- usage_by_trace: what did each request (trace) cost, and which correlation id, user and root
-- span does it belong to? One row per trace holding at least one LLM call. Root span fields come
-- from the trace's root span (no parent); while the root has not arrived they fall back to what
-- the trace's other spans carry. One pass over the trace's spans (no join), so it stays fast.
CREATE OR REPLACE VIEW usage_by_trace AS
WITH per_trace AS (
    SELECT
        trace_id,
        is_llm_call(operation, input_tokens, output_tokens) AS is_call,
        parent_span_id IS NULL AS is_root,
        *  EXCLUDE (trace_id)
    FROM spans
)
SELECT
    trace_id,
    coalesce(arg_min(correlation_id, start_time) FILTER (WHERE is_root), max(correlation_id))
        AS correlation_id,
    arg_min(name, start_time) FILTER (WHERE is_root) AS root_span,
    coalesce(arg_min(service_name, start_time) FILTER (WHERE is_root), max(service_name))
        AS service_name,
    coalesce(arg_min(user_id, start_time) FILTER (WHERE is_root), max(user_id)) AS user_id,
    coalesce(arg_min(tenant, start_time) FILTER (WHERE is_root), max(tenant)) AS tenant,
    coalesce(arg_min(job_type, start_time) FILTER (WHERE is_root), max(job_type)) AS job_type,
    min(start_time) AS start_time,
    coalesce(
        arg_min(duration_ms, start_time) FILTER (WHERE is_root),
        CAST(epoch_us(max(end_time)) - epoch_us(min(start_time)) AS DOUBLE) / 1000
    ) AS duration_ms,
    count(*) FILTER (WHERE is_call) AS calls,
    CAST(coalesce(sum(input_tokens) FILTER (WHERE is_call), 0) AS BIGINT) AS input_tokens,
    CAST(coalesce(sum(output_tokens) FILTER (WHERE is_call), 0) AS BIGINT) AS output_tokens,
    CAST(coalesce(sum(cache_read_tokens) FILTER (WHERE is_call), 0) AS BIGINT)
        AS cache_read_tokens,
    CAST(coalesce(sum(cache_creation_tokens) FILTER (WHERE is_call), 0) AS BIGINT)
        AS cache_creation_tokens,
    CAST(coalesce(sum(reasoning_tokens) FILTER (WHERE is_call), 0) AS BIGINT) AS reasoning_tokens,
    CAST(
        coalesce(sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0))
            FILTER (WHERE is_call), 0)
        AS BIGINT
    ) AS total_tokens,
    sum(cost_usd) FILTER (WHERE is_call) AS cost_usd,
    count(*) FILTER (WHERE is_call AND cost_usd IS NULL) AS unpriced_calls
FROM per_trace
GROUP BY trace_id
HAVING count(*) FILTER (WHERE is_call) > 0;
