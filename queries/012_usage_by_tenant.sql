-- usage_by_tenant: what does each client / tenant / organisation consume, for billing?
-- One row per tenant (NULL = calls made outside any tenant context), with the interactive vs
-- background split and the number of distinct users.
CREATE OR REPLACE VIEW usage_by_tenant AS
SELECT
    tenant,
    count(*) AS calls,
    count(DISTINCT user_id) AS users,
    CAST(sum(coalesce(input_tokens, 0)) AS BIGINT) AS input_tokens,
    CAST(sum(coalesce(output_tokens, 0)) AS BIGINT) AS output_tokens,
    CAST(sum(coalesce(cache_read_tokens, 0)) AS BIGINT) AS cache_read_tokens,
    CAST(sum(coalesce(cache_creation_tokens, 0)) AS BIGINT) AS cache_creation_tokens,
    CAST(sum(coalesce(reasoning_tokens, 0)) AS BIGINT) AS reasoning_tokens,
    CAST(sum(total_tokens) AS BIGINT) AS total_tokens,
    sum(cost_usd) AS cost_usd,
    count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls,
    CAST(sum(cost_usd) / nullif(sum(sum(cost_usd)) OVER (), 0) AS DOUBLE) AS share_of_cost,
    count(*) FILTER (WHERE NOT is_background) AS interactive_calls,
    count(*) FILTER (WHERE is_background) AS background_calls,
    sum(cost_usd) FILTER (WHERE NOT is_background) AS interactive_cost_usd,
    sum(cost_usd) FILTER (WHERE is_background) AS background_cost_usd,
    min(start_time) AS first_seen,
    max(start_time) AS last_seen
FROM llm_calls
GROUP BY tenant;
