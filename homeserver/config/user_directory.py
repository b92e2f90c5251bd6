"""`user_directory`: whether `/user_directory/search` answers, and whom it searches."""

from homeserver.config._base import RawConfig, Section


class UserDirectoryConfig(Section):
    SCHEMA = {
        "user_directory": {
            "type": ["object", "null"],
            "properties": {
                "enabled": {"type": "boolean"},
                "search_all_users": {"type": "boolean"},
                # Accepted for Synapse compatibility; no remote or locked users exist yet.
                "prefer_local_users": {"type": "boolean"},
                "exclude_remote_users": {"type": "boolean"},
                "show_locked_users": {"type": "boolean"},
            },
        },
    }

    def read(self, raw: RawConfig) -> None:
        section = raw.get("user_directory") or {}
        self.enabled = bool(section.get("enabled", True))
        self.search_all_users = bool(section.get("search_all_users", False))
