"""Versioned schema migrations.

`deltas/NNNN_name.sql` applies to every engine; `NNNN_name.postgres.sql` and
`NNNN_name.sqlite.sql` hold engine-specific SQL. SCHEMA_VERSION is the highest NNNN this code
needs. Only the main process migrates; every other process checks and refuses to start on a
mismatch.
"""

SCHEMA_VERSION = 4
