-- trace_nodes: inside one request, which nodes made the calls and what did each cost?
-- One row per trace x resolved node; share_of_trace_cost is the node's fraction (0..1) of the
-- trace's priced cost. Filter on trace_id or correlation_id.
CREATE OR REPLACE VIEW trace_nodes AS
SELECT
    trace_id,
    max(correlation_id) AS correlation_id,
    node,
    count(*) AS calls,
    CAST(coalesce(sum(input_tokens), 0) AS BIGINT) AS input_tokens,
    CAST(coalesce(sum(output_tokens), 0) AS BIGINT) AS output_tokens,
    CAST(coalesce(sum(cache_read_tokens), 0) AS BIGINT) AS cache_read_tokens,
    CAST(coalesce(sum(cache_creation_tokens), 0) AS BIGINT) AS cache_creation_tokens,
    CAST(coalesce(sum(reasoning_tokens), 0) AS BIGINT) AS reasoning_tokens,
    CAST(coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) AS BIGINT)
        AS total_tokens,
    sum(cost_usd) AS cost_usd,
    count(*) - count(cost_usd) AS unpriced_calls,
    CAST(sum(cost_usd) / nullif(sum(sum(cost_usd)) OVER (PARTITION BY trace_id), 0) AS DOUBLE)
        AS share_of_trace_cost,
    min(start_time) AS first_call,
    sum(duration_ms) AS call_duration_ms
FROM llm_calls
GROUP BY trace_id, node;
