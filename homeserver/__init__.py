"""homeserver: a Matrix homeserver on Twisted that scales out across worker processes."""

__version__ = "0.1.0"
