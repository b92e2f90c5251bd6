"""`enable_metrics` and `report_stats`."""

from homeserver.config._base import RawConfig, Section


class MetricsConfig(Section):
    SCHEMA = {
        "enable_metrics": {
            "type": "boolean",
            "description": "Accepted for compatibility with Synapse, where it switches metrics "
            "on. Here any listener with the `metrics` resource (or of type `metrics`) serves them "
            "whatever this says. Default `false`.",
        },
        "report_stats": {
            "type": "boolean",
            "description": "Synapse's anonymous usage statistics. Accepted and ignored: this "
            "server reports nothing.",
        },
        "report_stats_endpoint": {
            "type": "string",
            "description": "Where Synapse sends those statistics. Accepted and ignored.",
        },
        "metrics_flags": {
            "type": "object",
            "description": "Synapse's optional extra metrics. Accepted and ignored.",
        },
    }

    def read(self, raw: RawConfig) -> None:
        self.enable_metrics = bool(raw.get("enable_metrics", False))
