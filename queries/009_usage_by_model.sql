-- usage_by_model: which providers and models are used, how much, and at what cost?
-- One row per provider x model (the response model, else the requested one).
CREATE OR REPLACE VIEW usage_by_model AS
SELECT
    provider,
    model,
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
    count(*) FILTER (WHERE usage_estimated) AS estimated_calls,
    CAST(sum(cost_usd) / nullif(sum(sum(cost_usd)) OVER (), 0) AS DOUBLE) AS share_of_cost,
    (coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0)) / count(*)
        AS avg_tokens_per_call,
    min(start_time) AS first_seen,
    max(start_time) AS last_seen
FROM llm_calls
GROUP BY provider, model;
