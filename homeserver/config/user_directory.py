"""`user_directory`: whether `/user_directory/search` answers, and whom it searches."""

from homeserver.config._base import RawConfig, Section


class UserDirectoryConfig(Section):
    SCHEMA = {
        "user_directory": {
            "type": ["object", "null"],
            "description": "The user search, `/user_directory/search`.",
            "properties": {
                "enabled": {
                    "type": "boolean",
                    "description": "Answer searches; when false every search finds nobody. "
                    "Default `true`.",
                },
                "search_all_users": {
                    "type": "boolean",
                    "description": "When true every local user can be found; when false only "
                    "users who share a room with the searcher or are in a room that is public "
                    "(public join rule or world-readable history). Default `false`.",
                },
                # Accepted for Synapse compatibility; no remote or locked users exist yet.
                "prefer_local_users": {
                    "type": "boolean",
                    "description": "Rank local users first. Accepted and ignored: there are no "
                    "remote users yet.",
                },
                "exclude_remote_users": {
                    "type": "boolean",
                    "description": "Leave users of other servers out. Accepted and ignored: there "
                    "are no remote users yet.",
                },
                "show_locked_users": {
                    "type": "boolean",
                    "description": "Include locked accounts. Accepted and ignored: accounts "
                    "cannot be locked yet.",
                },
            },
        },
    }

    def read(self, raw: RawConfig) -> None:
        section = raw.get("user_directory") or {}
        self.enabled = bool(section.get("enabled", True))
        self.search_all_users = bool(section.get("search_all_users", False))
