-- usage_by_model: which providers and models are used, how much, and at what cost?
-- One row per provider x model (the response model, else the requested one).
CREATE OR REPLACE VIEW usage_by_model AS
SELECT
    provider,
    model,
    count(*) AS calls,
    CAST(sum(coalesce(input_tokens, 0)) AS BIGINT) AS input_tokens,
    CAST(sum(coalesce(output_tokens, 0)) AS BIGINT) AS output_tokens,
    CAST(sum(coalesce(cache_read_tokens, 0)) AS BIGINT) AS cache_read_tokens,
    CAST(sum(coalesce(cache_creation_tokens, 0)) AS BIGINT) AS cache_creation_tokens,
    CAST(sum(coalesce(reasoning_tokens, 0)) AS BIGINT) AS reasoning_tokens,
    CAST(sum(total_tokens) AS BIGINT) AS total_tokens,
    sum(cost_usd) AS cost_usd,
    count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls,
    count(*) FILTER (WHERE usage_estimated) AS estimated_calls,
    CAST(sum(cost_usd) / nullif(sum(sum(cost_usd)) OVER (), 0) AS DOUBLE) AS share_of_cost,
    sum(total_tokens) / count(*) AS avg_tokens_per_call,
    min(start_time) AS first_seen,
    max(start_time) AS last_seen
FROM llm_calls
GROUP BY provider, model;
