-- What usage_by_trace has counted already. Each append_spans call takes a number from the
-- sequence span_batches and stores it in spans.appended_batch of every row it inserts; the one
-- row of trace_usage_state says through which batch trace_usage (queries/016_trace_usage.sql)
-- holds the spans. The spans after it are "unfolded" (unfolded_trace_usage): usage_by_trace
-- adds them at query time, and append_spans folds them into trace_usage every
-- store.FOLD_SPANS_AT spans. So appending costs one constant column, not a second write per
-- span; and since appended_batch only grows, finding the unfolded spans skips every row group
-- before them. Rows stored before this migration are batch 0, counted when it is applied.
ALTER TABLE spans ADD COLUMN IF NOT EXISTS appended_batch BIGINT DEFAULT 0;
CREATE SEQUENCE IF NOT EXISTS span_batches START 1;
CREATE TABLE IF NOT EXISTS trace_usage_state (
    folded_through BIGINT NOT NULL  -- -1: nothing folded yet, every span is unfolded
);
INSERT INTO trace_usage_state SELECT -1 WHERE NOT EXISTS (FROM trace_usage_state);
