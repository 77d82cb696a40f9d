-- trace_usage_of(relation): what do the spans of a relation (named by a string: 'spans', or the
-- batch being appended) add to each trace's usage? One row per trace, in the columns of
-- trace_usage (queries/016_trace_usage.sql). Only the LLM calls and the root spans are read:
-- the calls give the counts, tokens and cost, the roots the name, service and duration, both
-- the ids. When this text changes, store.migrate rebuilds trace_usage from every stored span.
CREATE OR REPLACE MACRO trace_usage_of(relation) AS TABLE
SELECT
    trace_id,
    any_value(correlation_id) AS correlation_id,
    any_value(user_id) AS user_id,
    any_value(tenant) AS tenant,
    any_value(job_type) AS job_type,
    any_value(name) FILTER (WHERE parent_span_id IS NULL) AS root_span,
    any_value(service_name) FILTER (WHERE parent_span_id IS NULL) AS root_service_name,
    any_value(duration_ms) FILTER (WHERE parent_span_id IS NULL) AS root_duration_ms,
    any_value(service_name) AS service_name,
    min(start_time) AS start_time,
    max(end_time) AS end_time,
    count(*) FILTER (WHERE is_call) AS calls,
    sum(input_tokens) FILTER (WHERE is_call) AS input_tokens,
    sum(output_tokens) FILTER (WHERE is_call) AS output_tokens,
    sum(cache_read_tokens) FILTER (WHERE is_call) AS cache_read_tokens,
    sum(cache_creation_tokens) FILTER (WHERE is_call) AS cache_creation_tokens,
    sum(reasoning_tokens) FILTER (WHERE is_call) AS reasoning_tokens,
    sum(cost_usd) FILTER (WHERE is_call) AS cost_usd,
    count(*) FILTER (WHERE is_call AND cost_usd IS NULL) AS unpriced_calls
FROM (
    SELECT *, is_llm_call(operation, input_tokens, output_tokens) AS is_call
    FROM query_table(relation)
)
WHERE is_call OR parent_span_id IS NULL
GROUP BY trace_id;
