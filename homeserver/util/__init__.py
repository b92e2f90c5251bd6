"""Small helpers shared by every layer: random strings, JSON, clocks."""
