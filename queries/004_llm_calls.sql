-- llm_calls: which LLM calls were made, and which node made each one?
-- One row per LLM call (spans.llm_call, the stored value of is_llm_call). `node` is the call's own node, else the node of its
-- nearest ancestor span in the same trace (spans.inherited_node, resolved by the ancestor walk
-- at ingest); `own_node` keeps what the span itself carried. Every roll-up view reads this one,
-- so a node span, an agent span or a plain span never adds tokens of its own.
CREATE OR REPLACE VIEW llm_calls AS
SELECT
    * EXCLUDE (inherited_node, llm_call) REPLACE (coalesce(node, inherited_node) AS node),
    node AS own_node,
    coalesce(response_model, request_model) AS model,
    coalesce(input_tokens, 0) + coalesce(output_tokens, 0) AS total_tokens,
    job_type IS NOT NULL AS is_background,
    -- UTC day by arithmetic: independent of the session TimeZone, and cheap per row
    DATE '1970-01-01' + CAST(epoch_us(start_time) // 86400000000 AS INTEGER) AS day
FROM spans
WHERE llm_call;
