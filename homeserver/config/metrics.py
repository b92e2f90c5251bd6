"""`enable_metrics` and `report_stats`."""

from homeserver.config._base import RawConfig, Section


class MetricsConfig(Section):
    SCHEMA = {
        "enable_metrics": {"type": "boolean"},
        "report_stats": {"type": "boolean"},
        "report_stats_endpoint": {"type": "string"},
        "metrics_flags": {"type": "object"},
    }

    def read(self, raw: RawConfig) -> None:
        self.enable_metrics = bool(raw.get("enable_metrics", False))
