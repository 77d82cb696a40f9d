-- calls_awaiting_node: the LLM calls stored without a node of their own and with none inherited
-- yet (spans.llm_call AND node IS NULL AND inherited_node IS NULL), for store.AWAIT_NODE_FOR.
-- append_spans adds each batch's new such calls and runs the ancestor walk only when a batch
-- touches a trace listed here; the walk removes the calls it resolves, and calls older than
-- AWAIT_NODE_FOR (24 h before the newest batch) are dropped. The question "does this batch need a walk?" is then answered
-- from this small table, instead of by scanning every span of the last hours on every commit
-- (which grew with ingest volume: ~120 ms per commit with 1.2 M recent spans). With the
-- otel_tokens plugin every call carries its own node and the table stays empty.
CREATE TABLE IF NOT EXISTS calls_awaiting_node (
    trace_id   VARCHAR NOT NULL,
    span_id    VARCHAR NOT NULL,
    start_time TIMESTAMPTZ NOT NULL
);
-- Filled from the spans already stored by queries.store.migrate (the same query as each append).
