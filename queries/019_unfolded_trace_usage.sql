-- unfolded_trace_usage: what do the spans not yet folded into trace_usage add to their traces?
-- One row per such LLM call or root span, in the columns of trace_usage
-- (queries/016_trace_usage.sql); other spans add nothing. A call adds its count, tokens and
-- cost, a root span its name, service and duration, both their ids. "Not yet folded": appended
-- after the batch trace_usage_state.folded_through (queries/018_span_batches.sql); only those
-- row groups are read. When this text changes, store.migrate rebuilds trace_usage.
CREATE OR REPLACE VIEW unfolded_trace_usage AS
SELECT
    trace_id,
    correlation_id,
    user_id,
    tenant,
    job_type,
    CASE WHEN parent_span_id IS NULL THEN name END AS root_span,
    CASE WHEN parent_span_id IS NULL THEN service_name END AS root_service_name,
    CASE WHEN parent_span_id IS NULL THEN duration_ms END AS root_duration_ms,
    service_name,
    start_time,
    end_time,
    CAST(llm_call AS BIGINT) AS calls,
    CASE WHEN llm_call THEN input_tokens END AS input_tokens,
    CASE WHEN llm_call THEN output_tokens END AS output_tokens,
    CASE WHEN llm_call THEN cache_read_tokens END AS cache_read_tokens,
    CASE WHEN llm_call THEN cache_creation_tokens END AS cache_creation_tokens,
    CASE WHEN llm_call THEN reasoning_tokens END AS reasoning_tokens,
    CASE WHEN llm_call THEN cost_usd END AS cost_usd,
    CAST(llm_call AND cost_usd IS NULL AS BIGINT) AS unpriced_calls
FROM spans
WHERE appended_batch > (SELECT folded_through FROM trace_usage_state)
  AND (llm_call OR parent_span_id IS NULL);
