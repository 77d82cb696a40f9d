-- user_usage_since(ts): how many tokens and dollars has each user consumed since ts, interactive
-- and background together? For sliding-window limits, e.g.
--   SELECT * FROM user_usage_since(now() - INTERVAL 1 DAY) WHERE user_id = 'u1';
CREATE OR REPLACE MACRO user_usage_since(since) AS TABLE
SELECT
    user_id,
    count(*) AS calls,
    CAST(coalesce(sum(input_tokens), 0) AS BIGINT) AS input_tokens,
    CAST(coalesce(sum(output_tokens), 0) AS BIGINT) AS output_tokens,
    CAST(coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) AS BIGINT)
        AS total_tokens,
    sum(cost_usd) AS cost_usd,
    count(*) - count(cost_usd) AS unpriced_calls
FROM llm_calls
WHERE start_time >= since
GROUP BY user_id;
