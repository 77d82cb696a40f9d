-- trace_usage_combined(folded, added): the usage of each trace that something was added to:
-- its folded row (a relation in the columns of trace_usage, named by a string; none for a new
-- trace) combined with what was added since (idem, e.g. 'trace_usage_added'). One row per row
-- of added. Values of the folded row win where both have one (ids, root span); counts add up;
-- times take the earliest start and latest end.
CREATE OR REPLACE MACRO trace_usage_combined(folded, added) AS TABLE
SELECT
    a.trace_id,
    coalesce(f.correlation_id, a.correlation_id) AS correlation_id,
    coalesce(f.user_id, a.user_id) AS user_id,
    coalesce(f.tenant, a.tenant) AS tenant,
    coalesce(f.job_type, a.job_type) AS job_type,
    coalesce(f.root_span, a.root_span) AS root_span,
    coalesce(f.root_service_name, a.root_service_name) AS root_service_name,
    coalesce(f.root_duration_ms, a.root_duration_ms) AS root_duration_ms,
    coalesce(f.service_name, a.service_name) AS service_name,
    least(f.start_time, a.start_time) AS start_time,  -- least/greatest skip NULLs
    greatest(f.end_time, a.end_time) AS end_time,
    coalesce(f.calls, 0) + a.calls AS calls,
    coalesce(f.input_tokens, 0) + a.input_tokens AS input_tokens,
    coalesce(f.output_tokens, 0) + a.output_tokens AS output_tokens,
    coalesce(f.cache_read_tokens, 0) + a.cache_read_tokens AS cache_read_tokens,
    coalesce(f.cache_creation_tokens, 0) + a.cache_creation_tokens AS cache_creation_tokens,
    coalesce(f.reasoning_tokens, 0) + a.reasoning_tokens AS reasoning_tokens,
    coalesce(f.cost_usd, 0) + a.cost_usd AS cost_usd,
    coalesce(f.unpriced_calls, 0) + a.unpriced_calls AS unpriced_calls
FROM query_table(added) AS a
LEFT JOIN (
    -- the folded rows of these traces first: the join then hashes the few added traces, not
    -- every folded row (DuckDB cannot tell which side is small and chose wrong: +0.3 s)
    SELECT * FROM query_table(folded) WHERE trace_id IN (SELECT trace_id FROM query_table(added))
) AS f ON f.trace_id = a.trace_id;
