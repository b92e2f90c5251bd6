"""Versioned schema migrations.

`deltas/NNNN_name.sql` applies to every engine; `NNNN_name.postgres.sql` and
`NNNN_name.sqlite.sql` hold engine-specific SQL. The schema version this code needs is the
highest NNNN shipped with it. Only the main process migrates; every other process checks and
refuses to start on a mismatch.
"""

import os
import re

_DELTAS = os.path.join(os.path.dirname(__file__), "deltas")

SCHEMA_VERSION = max(
    int(match.group(1)) for name in os.listdir(_DELTAS) if (match := re.match(r"^(\d{4})_", name))
)
