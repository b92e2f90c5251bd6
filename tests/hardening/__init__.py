"""Hardening tests: limits on request sizes, hostile input, slow clients, long-polls and rates."""
