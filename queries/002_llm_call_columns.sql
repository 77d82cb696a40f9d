-- Two columns that the ingest path fills so that the views read stored facts instead of
-- recomputing them over millions of spans on every query:
--   llm_call        is this span an LLM call? (the value of is_llm_call(), see 003)
--   inherited_node  for an LLM call without a node of its own, the node of its nearest ancestor
--                   span in the same trace
-- queries.store.append_spans sets llm_call for each new row and walks up parent_span_id for the
-- traces of each batch (so a parent arriving after its child still reaches it): walking trees
-- at query time over 10 M spans takes seconds, reading a stored column milliseconds. Rows stored
-- before this migration are filled when it is applied.
ALTER TABLE spans ADD COLUMN IF NOT EXISTS llm_call BOOLEAN;
ALTER TABLE spans ADD COLUMN IF NOT EXISTS inherited_node VARCHAR;
