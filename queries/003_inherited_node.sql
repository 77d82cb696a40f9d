-- spans.inherited_node: for an LLM call without a node of its own, the node of its nearest
-- ancestor span in the same trace. Filled when spans are appended (queries.store.append_spans
-- walks up parent_span_id for the traces of each batch, so a parent arriving after its child
-- still reaches it), because walking trees at query time over millions of spans cannot answer
-- a report in under a second. Existing rows are filled once when this migration is applied.
ALTER TABLE spans ADD COLUMN IF NOT EXISTS inherited_node VARCHAR;
