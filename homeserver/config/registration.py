"""Registration, passwords and the shared secret of the admin registration API."""

from homeserver.config._base import RawConfig, Section


class RegistrationConfig(Section):
    SCHEMA = {
        "enable_registration": {"type": "boolean"},
        "enable_registration_without_verification": {"type": "boolean"},
        "registration_shared_secret": {"type": "string", "minLength": 1},
        "registration_shared_secret_path": {"type": "string"},
        "registration_requires_token": {"type": "boolean"},
        "bcrypt_rounds": {"type": "integer", "minimum": 4, "maximum": 31},
        "allow_guest_access": {"type": "boolean"},
        "inhibit_user_in_use_error": {"type": "boolean"},
        "auto_join_rooms": {"type": "array", "items": {"type": "string"}},
        "session_lifetime": {"type": ["string", "integer"]},
        "password_config": {
            "type": "object",
            "properties": {
                "enabled": {"type": ["boolean", "string"]},
                "localdb_enabled": {"type": "boolean"},
                "pepper": {"type": "string"},
                "policy": {
                    "type": "object",
                    "properties": {
                        "enabled": {"type": "boolean"},
                        "minimum_length": {"type": "integer", "minimum": 0},
                        "require_digit": {"type": "boolean"},
                        "require_symbol": {"type": "boolean"},
                        "require_lowercase": {"type": "boolean"},
                        "require_uppercase": {"type": "boolean"},
                    },
                },
            },
        },
    }

    def read(self, raw: RawConfig) -> None:
        self.enable_registration = bool(raw.get("enable_registration", False))
        without_verification = bool(raw.get("enable_registration_without_verification", False))
        if self.enable_registration and not without_verification:
            raise raw.error(
                "open registration without email or captcha verification invites spam; "
                "set enable_registration_without_verification: true if you really want it",
                "enable_registration",
            )
        if raw.get("registration_requires_token"):
            raise raw.error("registration tokens are not supported yet", "registration_requires_token")
        self.registration_shared_secret: str | None = raw.get("registration_shared_secret")
        path = raw.get("registration_shared_secret_path")
        if path and self.registration_shared_secret:
            raise raw.error("set one of registration_shared_secret and its _path, not both", "registration_shared_secret_path")
        if path:
            try:
                with open(path) as f:
                    self.registration_shared_secret = f.read().strip()
            except OSError as e:
                raise raw.error(f"cannot read the file: {e.strerror}", "registration_shared_secret_path") from e
        self.bcrypt_rounds: int = raw.get("bcrypt_rounds", 12)
        self.allow_guest_access = bool(raw.get("allow_guest_access", False))
        password = raw.get("password_config") or {}
        self.password_login_enabled = password.get("enabled", True) is not False
        self.password_localdb_enabled = bool(password.get("localdb_enabled", True))
        self.password_pepper: str = password.get("pepper", "")
        policy = password.get("policy") or {}
        self.password_policy = policy if policy.get("enabled") else {}
