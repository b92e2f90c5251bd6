"""Replication between processes (DESIGN §5): one-line commands over Redis pub/sub, with
the database as the truth and Redis as the doorbell."""
