"""Process entry points: the main process, generic workers and the legacy worker app names."""
