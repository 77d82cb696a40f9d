-- usage_by_user: how many tokens and dollars did each end user consume, in requests they made
-- (interactive) and in background jobs run for them, and when were they first and last seen?
-- One row per user_id (NULL = calls made outside any user context). cost_usd sums the priced
-- calls only (NULL when none is priced); unpriced calls are counted in unpriced_calls and listed
-- in unpriced_models.
CREATE OR REPLACE VIEW usage_by_user AS
SELECT
    user_id,
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
    count(job_type) AS background_calls,
    CAST(coalesce(sum(total_tokens) FILTER (WHERE job_type IS NULL), 0) AS BIGINT)
        AS interactive_tokens,
    CAST(coalesce(sum(total_tokens) FILTER (WHERE job_type IS NOT NULL), 0) AS BIGINT)
        AS background_tokens,
    sum(cost_usd) FILTER (WHERE job_type IS NULL) AS interactive_cost_usd,
    sum(cost_usd) FILTER (WHERE job_type IS NOT NULL) AS background_cost_usd,
    min(start_time) AS first_seen,
    max(start_time) AS last_seen
FROM llm_calls
GROUP BY user_id;
