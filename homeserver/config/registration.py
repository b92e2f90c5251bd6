"""Registration, passwords and the shared secret of the admin registration API."""

from homeserver.config._base import RawConfig, Section


class RegistrationConfig(Section):
    SCHEMA = {
        "enable_registration": {
            "type": "boolean",
            "description": "Let anyone create an account through `/register`. Default `false`. "
            "No email or captcha check exists yet, so the process refuses to start with this "
            "unless `enable_registration_without_verification` is true as well.",
        },
        "enable_registration_without_verification": {
            "type": "boolean",
            "description": "Confirms that open registration without any verification is really "
            "wanted. Default `false`.",
        },
        "registration_shared_secret": {
            "type": "string", "minLength": 1,
            "description": "A secret that lets an admin create accounts through "
            "`/_synapse/admin/v1/register` (which `register_new_matrix_user` uses). Default: none, "
            "and that endpoint is then disabled.",
        },
        "registration_shared_secret_path": {
            "type": "string",
            "description": "A file holding `registration_shared_secret` (surrounding whitespace "
            "is dropped). Set one of the two.",
        },
        "registration_requires_token": {
            "type": "boolean",
            "description": "Require a registration token to register. Not supported yet: `true` "
            "is refused at start-up. Default `false`.",
        },
        "bcrypt_rounds": {
            "type": "integer", "minimum": 4, "maximum": 31,
            "description": "Cost of new password hashes: each step doubles the time bcrypt "
            "takes. Default `12`.",
        },
        "allow_guest_access": {
            "type": "boolean",
            "description": "Guest accounts. Accepted, but guests are not supported: guest "
            "registration is always refused with 403 `M_GUEST_ACCESS_FORBIDDEN`. Default `false`.",
        },
        "inhibit_user_in_use_error": {
            "type": "boolean",
            "description": "Makes Synapse hide whether a user name is already taken. Accepted and "
            "ignored.",
        },
        "auto_join_rooms": {
            "type": "array", "items": {"type": "string"},
            "description": "Rooms Synapse joins every new user to. Accepted and ignored: new "
            "users join no rooms automatically.",
        },
        "session_lifetime": {
            "type": ["string", "integer"],
            "description": "How long Synapse lets a login session last. Accepted and ignored: "
            "access tokens here never expire (they end with logout or device deletion).",
        },
        "password_config": {
            "type": "object",
            "description": "Password login and the rules new passwords must follow.",
            "properties": {
                "enabled": {
                    "type": ["boolean", "string"],
                    "description": "Allow password login and password changes. Default `true`; "
                    "only `false` turns them off (a string such as `only_for_reauth` leaves them "
                    "fully on).",
                },
                "localdb_enabled": {
                    "type": "boolean",
                    "description": "Check passwords against the hashes in the database. Default "
                    "`true`; with `false` every password login fails, as there is no other "
                    "password provider.",
                },
                "pepper": {
                    "type": "string",
                    "description": "A secret added to every password before hashing. Default "
                    "empty. Never change it once users have passwords: they could no longer log "
                    "in.",
                },
                "policy": {
                    "type": "object",
                    "description": "Rules checked when a password is chosen (registration and "
                    "password change); they apply only when `policy.enabled` is true.",
                    "properties": {
                        "enabled": {
                            "type": "boolean",
                            "description": "Apply the rules below. Default `false`.",
                        },
                        "minimum_length": {
                            "type": "integer", "minimum": 0,
                            "description": "Fewest characters a new password may have. Default "
                            "`0` (no minimum).",
                        },
                        "require_digit": {
                            "type": "boolean",
                            "description": "A new password must contain a digit. Default `false`.",
                        },
                        "require_symbol": {
                            "type": "boolean",
                            "description": "A new password must contain a character that is "
                            "neither a letter nor a digit. Default `false`.",
                        },
                        "require_lowercase": {
                            "type": "boolean",
                            "description": "A new password must contain a lower-case letter. "
                            "Default `false`.",
                        },
                        "require_uppercase": {
                            "type": "boolean",
                            "description": "A new password must contain an upper-case letter. "
                            "Default `false`.",
                        },
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
