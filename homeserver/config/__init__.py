"""Configuration: one module per section, each with its jsonschema; loading, merging and generating.

`load_config(paths)` reads the shared file(s) and the worker file(s) in order and returns a
`HomeServerConfig`. Every mistake is reported as a `ConfigError` naming the file and key path.
"""

from homeserver.config._base import ConfigError
from homeserver.config.homeserver import HomeServerConfig, load_config

__all__ = ["ConfigError", "HomeServerConfig", "load_config"]
