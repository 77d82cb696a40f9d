-- is_llm_call(operation, input_tokens, output_tokens): is this span an LLM call?
-- The one definition every view and the node inheritance share (stored per row in
-- spans.llm_call when the row is appended). A call is a span with a model operation (chat,
-- text_completion, generate_content, embeddings, ...) or, when no operation was recorded, with
-- token counts. Agent and tool spans (invoke_agent, execute_tool, create_agent) are not calls:
-- their token counts, when present, repeat their children's and would double count.
-- When this rule changes, the UPDATE below brings the stored flags in line with it.
CREATE OR REPLACE MACRO is_llm_call(operation, input_tokens, output_tokens) AS
    (operation IS NOT NULL AND operation NOT IN ('invoke_agent', 'execute_tool', 'create_agent'))
    OR (operation IS NULL AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL));

UPDATE spans SET llm_call = is_llm_call(operation, input_tokens, output_tokens)
WHERE llm_call IS DISTINCT FROM is_llm_call(operation, input_tokens, output_tokens);
