-- usage_by_node: which graph nodes / agent steps / features spend the tokens and the money?
-- One row per resolved node (NULL = calls made outside any node). A node span carries no tokens
-- of its own here: only the LLM calls under it count, so nested nodes never double count.
-- share_of_cost is the node's fraction (0..1) of the cost of all priced calls.
CREATE OR REPLACE VIEW usage_by_node AS
SELECT
    node,
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
    CAST(sum(cost_usd) / nullif(sum(sum(cost_usd)) OVER (), 0) AS DOUBLE) AS share_of_cost,
    (coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0)) / count(*)
        AS avg_tokens_per_call,
    count(*) - count(job_type) AS interactive_calls,
    count(job_type) AS background_calls,
    min(start_time) AS first_seen,
    max(start_time) AS last_seen
FROM llm_calls
GROUP BY node;
