-- No index on spans.correlation_id any more (migration 015 made one). While a transaction
-- writes to a table, DuckDB holds the table's ART indexes whole in memory: at 10 M spans this
-- one needed more than the collector's memory_limit (64MB), so every bulk load failed ("failed
-- to pin block"), and it grows with the table. It also cost CPU on every append and ~10 bytes
-- per span on disk. Without it `otel-tokens trace <correlation id>` scans the column, ~60 ms at
-- 10 M spans on 2 cores (SPEC §8: at most 100 ms; bench/views.py measures it).
DROP INDEX IF EXISTS spans_correlation_id;
