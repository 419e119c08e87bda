"""Loads the key ring the configuration points at (key file, or AVHOPP_KEYS outside production)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from avhopp.config import ConfigError
from avhopp.crypto.errors import KeyFileError
from avhopp.crypto.keyring import LocalKeyRing, keyring_from_env_value, load_key_file

# `avhopp init-dev` marks the key files it writes; production refuses them (SECURITY.md D3).
DEVELOPMENT_MARKER = "development"


def load_keyring(config: Mapping[str, Any]) -> LocalKeyRing:
    production = config["ENV"] == "production"
    if config.get("KEYS"):
        if production:
            raise ConfigError("AVHOPP_KEYS (keys in the environment) is refused in production")
        return keyring_from_env_value(str(config["KEYS"]))
    path = Path(str(config["KEY_FILE"]))
    if not path.is_file():
        hint = "avhopp keys init" if production else "make run (or avhopp init-dev)"
        raise ConfigError(f"key file {path} does not exist: create it with `{hint}`")
    try:
        data = load_key_file(path, require_private_mode=production)
    except KeyFileError as exc:
        raise ConfigError(str(exc)) from exc
    if production and data.get(DEVELOPMENT_MARKER):
        raise ConfigError(f"key file {path} holds development keys; create production keys "
                          "with `avhopp keys init`")
    return LocalKeyRing(data)
