"""Storage: the database pool and engines, schema migrations, stream id generators and the stores.

No SQL lives outside this package. Each store in `stores/` owns its tables.
"""
