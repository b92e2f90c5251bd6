"""Tests of state resolution (package marker)."""
