"""Matrix logic, one module per domain. Handlers call stores and each other, never SQL."""
