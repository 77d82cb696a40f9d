-- An ART index on spans.correlation_id: `otel-tokens trace <correlation id>` finds its request
-- with an index lookup (a few ms) instead of scanning the column (~100 ms at 10 M spans).
-- Costs about 11 bytes per span on disk and some insert time (see bench/views.py).
CREATE INDEX IF NOT EXISTS spans_correlation_id ON spans (correlation_id);
