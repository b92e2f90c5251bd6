"""Faults injected into a real multi-process deployment under a bounded load of sends and
syncs (docs/reliability.md)."""
