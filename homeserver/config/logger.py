"""`log_config`: a Python logging dictConfig file; without one, INFO lines go to stderr."""

import logging
import logging.config
import sys

import yaml

from homeserver.config._base import ConfigError, RawConfig, Section

LOG_FORMAT = "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s"


class RequestContextFilter(logging.Filter):
    """Gives every record a `request` attribute (the request id, or `-`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request"):
            from homeserver.http.context import current_request_id

            record.request = current_request_id()
        return True


class LoggingConfig(Section):
    SCHEMA = {
        "log_config": {
            "type": "string",
            "description": "A Python logging config file (YAML in `logging.config.dictConfig` "
            "form). Default: none, and INFO and higher go to stderr.",
        },
        "no_tls": {
            "type": "boolean",
            "description": "An old Synapse switch for running without TLS. Accepted and ignored: "
            "this server never handles TLS itself.",
        },
    }

    def read(self, raw: RawConfig) -> None:
        self.log_config: str | None = raw.get("log_config")
        self.origin = raw.origins.get("log_config")


def setup_logging(log_config: str | None, origin: str | None = None) -> None:
    """Configure logging from the file, or to stderr; every handler gets the request id."""
    if log_config:
        try:
            with open(log_config) as f:
                conf = yaml.safe_load(f)
            if isinstance(conf, dict):
                # Loggers made at import time (every module's) must keep logging.
                conf.setdefault("disable_existing_loggers", False)
            logging.config.dictConfig(conf)
        except OSError as e:
            raise ConfigError(f"cannot read {log_config}: {e.strerror}", "log_config", origin) from e
        except (yaml.YAMLError, ValueError, TypeError) as e:
            raise ConfigError(f"{log_config} is not a valid logging config: {e}", "log_config", origin) from e
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root = logging.getLogger()
        root.handlers = [handler]
        root.setLevel(logging.INFO)
    for existing in logging.getLogger().handlers:
        existing.addFilter(RequestContextFilter())
