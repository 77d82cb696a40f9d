-- unpriced_models: which models have calls that carry no cost, because no price is known?
-- One row per provider x model with at least one call whose cost_usd is NULL; these tokens are
-- missing from every cost total. Fix with a price override, then `otel-tokens reprice`.
CREATE OR REPLACE VIEW unpriced_models AS
SELECT
    provider,
    model,
    count(*) AS calls,
    CAST(coalesce(sum(input_tokens), 0) AS BIGINT) AS input_tokens,
    CAST(coalesce(sum(output_tokens), 0) AS BIGINT) AS output_tokens,
    CAST(coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) AS BIGINT)
        AS total_tokens,
    min(start_time) AS first_seen,
    max(start_time) AS last_seen
FROM llm_calls
WHERE cost_usd IS NULL
GROUP BY provider, model;
