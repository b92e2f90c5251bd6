"""Client-Server API servlets."""
