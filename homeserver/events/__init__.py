"""The Matrix event model for room versions 1 to 11: formats, hashes, signatures,
redaction, validation, authorization rules and client serialization. Pure Python."""
