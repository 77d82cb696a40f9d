-- usage_by_day: how do calls, tokens and cost evolve day by day (UTC), per provider and model?
-- One row per day x provider x model.
CREATE OR REPLACE VIEW usage_by_day AS
SELECT
    day,
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
    count(*) FILTER (WHERE NOT is_background) AS interactive_calls,
    count(*) FILTER (WHERE is_background) AS background_calls
FROM llm_calls
GROUP BY day, provider, model;
