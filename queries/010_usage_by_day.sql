-- usage_by_day: how do calls, tokens and cost evolve day by day (UTC), per provider and model?
-- One row per day x provider x model.
CREATE OR REPLACE VIEW usage_by_day AS
SELECT
    day,
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
    count(*) - count(job_type) AS interactive_calls,
    count(job_type) AS background_calls
FROM llm_calls
GROUP BY day, provider, model;
