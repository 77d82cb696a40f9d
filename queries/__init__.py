"""Schema and views as plain .sql files, applied in order by :func:`queries.store.migrate`.

The SQL in this folder is the product for analysts: each view file opens with a comment saying
what question it answers.
"""
