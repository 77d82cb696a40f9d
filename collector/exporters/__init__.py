"""Exporters: where span batches are written (DuckDB, Parquet)."""
