-- usage_by_tenant: what does each client / tenant / organisation consume, for billing?
-- One row per tenant (NULL = calls made outside any tenant context), with the interactive vs
-- background split and the number of distinct users.
CREATE OR REPLACE VIEW usage_by_tenant AS
SELECT
    tenant,
    count(*) AS calls,
    count(DISTINCT user_id) AS users,
    CAST(coalesce(sum(input_tokens), 0) AS BIGINT) AS input_tokens,
    CAST(coalesce(sum(output_tokens), 0) AS BIGINT) AS output_tokens,
    CAST(coalesce(sum(cache_read_tokens), 0) AS BIGINT) AS cache_read_tokens,
    CAST(coalesce(sum(cache_creation_tokens), 0) AS BIGINT) AS cache_creation_tokens,
    CAST(coalesce(sum(reasoning_tokens), 0) AS BIGINT) AS reasoning_tokens,
    CAST(coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) AS BIGINT)
        AS total_tokens,
    sum(cost_usd) AS cost_usd,
    count(*) - count(cost_usd) AS unpriced_calls,
    CAST(sum(cost_usd) / nullif(sum(sum(cost_usd)) OVER (), 0) AS DOUBLE) AS share_of_cost,
    count(*) - count(job_type) AS interactive_calls,
    count(job_type) AS background_calls,
    sum(cost_usd) FILTER (WHERE job_type IS NULL) AS interactive_cost_usd,
    sum(cost_usd) FILTER (WHERE job_type IS NOT NULL) AS background_cost_usd,
    min(start_time) AS first_seen,
    max(start_time) AS last_seen
FROM llm_calls
GROUP BY tenant;
