-- usage_by_trace: what did each request (trace) cost, and which correlation id, user and root
-- span does it belong to? One row per trace holding at least one LLM call. root_span, start and
-- duration come from the trace's root span (no parent); while the root has not arrived, from
-- the calls. One pass over the calls and roots (no join), so it stays fast.
CREATE OR REPLACE VIEW usage_by_trace AS
SELECT
    trace_id,
    -- Every span of a request carries the same ids (the plugin stamps them all); any_value
    -- takes the first non-NULL one, so a trace whose root has not arrived still has them.
    any_value(correlation_id) AS correlation_id,
    any_value(name) FILTER (WHERE parent_span_id IS NULL) AS root_span,
    coalesce(any_value(service_name) FILTER (WHERE parent_span_id IS NULL),
             any_value(service_name)) AS service_name,
    any_value(user_id) AS user_id,
    any_value(tenant) AS tenant,
    any_value(job_type) AS job_type,
    min(start_time) AS start_time,
    coalesce(
        any_value(duration_ms) FILTER (WHERE parent_span_id IS NULL),
        CAST(epoch_us(max(end_time)) - epoch_us(min(start_time)) AS DOUBLE) / 1000
    ) AS duration_ms,
    count(*) FILTER (WHERE llm_call) AS calls,
    CAST(coalesce(sum(input_tokens) FILTER (WHERE llm_call), 0) AS BIGINT) AS input_tokens,
    CAST(coalesce(sum(output_tokens) FILTER (WHERE llm_call), 0) AS BIGINT) AS output_tokens,
    CAST(coalesce(sum(cache_read_tokens) FILTER (WHERE llm_call), 0) AS BIGINT)
        AS cache_read_tokens,
    CAST(coalesce(sum(cache_creation_tokens) FILTER (WHERE llm_call), 0) AS BIGINT)
        AS cache_creation_tokens,
    CAST(coalesce(sum(reasoning_tokens) FILTER (WHERE llm_call), 0) AS BIGINT)
        AS reasoning_tokens,
    CAST(
        coalesce(sum(input_tokens) FILTER (WHERE llm_call), 0)
        + coalesce(sum(output_tokens) FILTER (WHERE llm_call), 0)
        AS BIGINT
    ) AS total_tokens,
    sum(cost_usd) FILTER (WHERE llm_call) AS cost_usd,
    count(*) FILTER (WHERE llm_call AND cost_usd IS NULL) AS unpriced_calls
FROM spans
-- Only the calls and the root spans matter; the rest of each trace is not read twice.
WHERE llm_call OR parent_span_id IS NULL
GROUP BY trace_id
HAVING count(*) FILTER (WHERE llm_call) > 0;
