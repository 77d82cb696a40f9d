-- usage_by_user: how many tokens and dollars did each end user consume, in requests they made
-- (interactive) and in background jobs run for them, and when were they first and last seen?
-- One row per user_id (NULL = calls made outside any user context). cost_usd sums the priced
-- calls only (NULL when none is priced); unpriced calls are counted in unpriced_calls and listed
-- in unpriced_models.
CREATE OR REPLACE VIEW usage_by_user AS
SELECT
    user_id,
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
    count(*) FILTER (WHERE is_background) AS background_calls,
    CAST(coalesce(sum(total_tokens) FILTER (WHERE NOT is_background), 0) AS BIGINT)
        AS interactive_tokens,
    CAST(coalesce(sum(total_tokens) FILTER (WHERE is_background), 0) AS BIGINT)
        AS background_tokens,
    sum(cost_usd) FILTER (WHERE NOT is_background) AS interactive_cost_usd,
    sum(cost_usd) FILTER (WHERE is_background) AS background_cost_usd,
    min(start_time) AS first_seen,
    max(start_time) AS last_seen
FROM llm_calls
GROUP BY user_id;
