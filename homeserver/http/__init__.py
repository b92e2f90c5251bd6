"""HTTP: the twisted.web server (routing, Matrix errors, auth, CORS, request log, limits)."""
