"""Servlets only: parse and validate the request, call one handler, return JSON."""
