"""Configuration layering and validation; production refuses unsafe settings (D3)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from avhopp.app import create_app
from avhopp.config import ConfigError, load_config
from avhopp.crypto.keyring import generate_key_file, write_key_file
from avhopp.db import get_database
from avhopp.keys import DEVELOPMENT_MARKER, load_keyring

BIN = Path(sys.executable).parent


def base_overrides(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    return {"ENV": "testing", "INSTANCE_PATH": str(tmp_path / "instance"), **overrides}


# --- layering ----------------------------------------------------------------------------------


def test_environment_toml_overrides_default_toml(tmp_path: Path) -> None:
    config = load_config(base_overrides(tmp_path), environ={})
    assert config["ARGON2_TIME_COST"] == 1  # testing.toml; default.toml says 3
    assert config["SESSION_IDLE_MINUTES"] == 20  # only in default.toml


def test_development_environment_reads_its_own_toml(tmp_path: Path) -> None:
    config = load_config({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "dev-x"},
                         environ={"AVHOPP_ENV": "development"})
    assert config["ENV"] == "development"
    assert config["LOG_LEVEL"] == "DEBUG"  # development.toml; default.toml says INFO
    assert config["ARGON2_TIME_COST"] == 3


def test_config_file_overrides_environment_toml(tmp_path: Path) -> None:
    extra = tmp_path / "site.toml"
    extra.write_text("ARGON2_TIME_COST = 2\nORGANISATION_NAME = 'Exit Norr'\n", encoding="utf-8")
    config = load_config(base_overrides(tmp_path), environ={"AVHOPP_CONFIG_FILE": str(extra)})
    assert config["ARGON2_TIME_COST"] == 2
    assert config["ORGANISATION_NAME"] == "Exit Norr"


def test_avhopp_environment_variables_override_the_toml_files(tmp_path: Path) -> None:
    config = load_config(base_overrides(tmp_path), environ={
        "AVHOPP_ARGON2_TIME_COST": "2", "AVHOPP_HTTPS": "yes", "AVHOPP_ORGANISATION_NAME": "X",
        "OTHER_ARGON2_TIME_COST": "9",
    })
    assert config["ARGON2_TIME_COST"] == 2  # coerced to the default's type
    assert config["HTTPS"] is True
    assert config["ORGANISATION_NAME"] == "X"


def test_overrides_beat_the_environment(tmp_path: Path) -> None:
    config = load_config(base_overrides(tmp_path, ARGON2_TIME_COST=4),
                         environ={"AVHOPP_ARGON2_TIME_COST": "2"})
    assert config["ARGON2_TIME_COST"] == 4


def test_env_override_beats_avhopp_env(tmp_path: Path) -> None:
    config = load_config(base_overrides(tmp_path), environ={"AVHOPP_ENV": "production"})
    assert config["ENV"] == "testing"


def test_relative_paths_resolve_inside_the_instance_folder(tmp_path: Path) -> None:
    config = load_config(base_overrides(tmp_path), environ={})
    instance = tmp_path / "instance"
    assert config["INSTANCE_PATH"] == str(instance)
    assert config["DATABASE_URL"] == f"sqlite:///{instance / 'avhopp.sqlite'}"
    assert config["KEY_FILE"] == str(instance / "keys.json")


def test_secret_key_is_read_from_the_secret_key_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("dev-from-the-file\n", encoding="utf-8")
    config = load_config({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY_FILE": str(secret_file)},
                         environ={"AVHOPP_ENV": "development"})
    assert config["SECRET_KEY"] == "dev-from-the-file"


# --- bad values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("environ", "overrides", "names"), [
    ({"AVHOPP_SESSION_IDLE_MINUTES": "abc"}, {}, ["AVHOPP_SESSION_IDLE_MINUTES", "abc"]),
    ({"AVHOPP_SESSION_IDLE_MINUTES": "0"}, {}, ["SESSION_IDLE_MINUTES", "positive"]),
    ({"AVHOPP_HTTPS": "maybe"}, {}, ["AVHOPP_HTTPS", "maybe"]),
    ({"AVHOPP_PASSWORD_MIN_LENGTH": "8"}, {}, ["PASSWORD_MIN_LENGTH", "12"]),
    ({}, {"PASSWORD_MIN_LENGTH": 8}, ["PASSWORD_MIN_LENGTH", "12"]),
    ({}, {"PASSWORD_MAX_LENGTH": 64}, ["PASSWORD_MAX_LENGTH", "128"]),
    ({}, {"REAUTH_MINUTES": True}, ["REAUTH_MINUTES"]),
    ({}, {"DATABASE_URL": "mysql://x"}, ["DATABASE_URL"]),
    ({}, {"SECRET_KEY": ""}, ["SECRET_KEY is missing"]),
])
def test_bad_values_are_refused_with_a_message_naming_the_setting(
    tmp_path: Path, environ: dict[str, str], overrides: dict[str, Any], names: list[str]
) -> None:
    overrides = base_overrides(tmp_path, SECRET_KEY_FILE=str(tmp_path / "absent"), **overrides)
    with pytest.raises(ConfigError) as info:
        load_config(overrides, environ=environ)
    for name in names:
        assert name in str(info.value)


def test_an_unknown_environment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"AVHOPP_ENV must be one of .*'staging'"):
        load_config({"INSTANCE_PATH": str(tmp_path)}, environ={"AVHOPP_ENV": "staging"})


def test_a_missing_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AVHOPP_CONFIG_FILE"):
        load_config(base_overrides(tmp_path), environ={"AVHOPP_CONFIG_FILE": str(tmp_path / "no")})


def test_a_broken_config_file_is_refused_with_its_path(tmp_path: Path) -> None:
    extra = tmp_path / "broken.toml"
    extra.write_text("HTTPS = = true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_config(base_overrides(tmp_path), environ={"AVHOPP_CONFIG_FILE": str(extra)})


def test_several_problems_are_reported_together(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(base_overrides(tmp_path, PASSWORD_MIN_LENGTH=8, TOTP_MAX_ATTEMPTS=0),
                    environ={})
    assert "PASSWORD_MIN_LENGTH" in str(info.value)
    assert "TOTP_MAX_ATTEMPTS" in str(info.value)


# --- production ---------------------------------------------------------------------------------


def private_key_file(path: Path, *, development: bool = False, mode: int = 0o400) -> Path:
    data = generate_key_file()
    if development:
        data[DEVELOPMENT_MARKER] = True
    write_key_file(path, data)
    path.chmod(mode)
    return path


@pytest.fixture
def production(tmp_path: Path) -> dict[str, Any]:
    """Overrides for a production configuration that is correct in every respect."""
    return {
        "ENV": "production",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'production.sqlite'}",
        "KEY_FILE": str(private_key_file(tmp_path / "keys.json")),
        "SECRET_KEY_FILE": str(tmp_path / "no-secret-key-file"),
        "SECRET_KEY": secrets.token_urlsafe(48),
        "HTTPS": True,
        "DEBUG": False,
        "KEYS": "",
    }


def test_correct_production_configuration_loads(production: dict[str, Any]) -> None:
    config = load_config(production, environ={})
    load_keyring(config)
    assert config["ENV"] == "production"


def test_correct_production_configuration_starts_and_serves(production: dict[str, Any]) -> None:
    app = create_app(production)
    try:
        response = app.test_client().get("/health", base_url="https://localhost")
        assert response.status_code == 200
        assert app.debug is False
        assert "max-age=" in response.headers["Strict-Transport-Security"]
    finally:
        get_database(app).engine.dispose()


@pytest.mark.parametrize(("change", "message"), [
    ({"SECRET_KEY": ""}, "SECRET_KEY is missing"),
    ({"SECRET_KEY": "dev-" + "x" * 60}, "development/testing key"),
    ({"SECRET_KEY": "testing-secret-key-not-for-production-at-all"}, "development/testing key"),
    ({"SECRET_KEY": "short-but-random-31-characters!"}, "at least 32 characters"),
    ({"DEBUG": True}, "DEBUG must be false"),
    ({"KEYS": "anything"}, "AVHOPP_KEYS"),
    ({"HTTPS": False}, "HTTPS must be true"),
    ({"SMTP_SECURITY": "none"}, "SMTP_SECURITY none"),
    ({"SMTP_SECURITY": "ssl"}, "SMTP_SECURITY must be"),
    ({"SMTP_CA_FILE": "/nonexistent/ca.pem"}, "SMTP_CA_FILE"),
])
def test_production_refuses_unsafe_settings(
    production: dict[str, Any], change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config({**production, **change}, environ={})


@pytest.mark.parametrize(("name", "value", "message"), [
    ("AVHOPP_DEBUG", "true", "DEBUG must be false"),
    ("AVHOPP_HTTPS", "false", "HTTPS must be true"),
    ("AVHOPP_KEYS", "anything", "AVHOPP_KEYS"),
])
def test_production_refuses_unsafe_settings_from_the_environment(
    production: dict[str, Any], name: str, value: str, message: str
) -> None:
    key = name.removeprefix("AVHOPP_")
    overrides = {k: v for k, v in production.items() if k != key}
    with pytest.raises(ConfigError, match=message):
        load_config(overrides, environ={name: value})


def test_production_refuses_a_missing_key_file(
    production: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"KEY_FILE .*absent\.json does not exist"):
        load_config({**production, "KEY_FILE": str(tmp_path / "absent.json")}, environ={})


def test_production_refuses_a_key_file_readable_by_others(
    production: dict[str, Any], tmp_path: Path
) -> None:
    path = private_key_file(tmp_path / "open.json", mode=0o644)
    config = load_config({**production, "KEY_FILE": str(path)}, environ={})
    with pytest.raises(ConfigError, match=r"mode 0644.*not be readable by group or others"):
        load_keyring(config)


def test_production_refuses_a_key_file_readable_by_the_group(
    production: dict[str, Any], tmp_path: Path
) -> None:
    path = private_key_file(tmp_path / "group.json", mode=0o440)
    config = load_config({**production, "KEY_FILE": str(path)}, environ={})
    with pytest.raises(ConfigError, match="mode 0440"):
        load_keyring(config)


def test_production_refuses_development_keys(
    production: dict[str, Any], tmp_path: Path
) -> None:
    path = private_key_file(tmp_path / "dev.json", development=True)
    config = load_config({**production, "KEY_FILE": str(path)}, environ={})
    with pytest.raises(ConfigError, match="development keys"):
        load_keyring(config)


def test_create_app_refuses_development_keys_in_production(
    production: dict[str, Any], tmp_path: Path
) -> None:
    path = private_key_file(tmp_path / "dev.json", development=True)
    with pytest.raises(ConfigError, match="development keys"):
        create_app({**production, "KEY_FILE": str(path)})


def test_development_accepts_a_key_file_readable_by_others(tmp_path: Path) -> None:
    # The mode check is a production rule; development key files are created 0600 anyway.
    path = private_key_file(tmp_path / "dev.json", development=True, mode=0o644)
    config = load_config({"ENV": "development", "INSTANCE_PATH": str(tmp_path),
                          "SECRET_KEY": "dev-x", "KEY_FILE": str(path)}, environ={})
    load_keyring(config)


# --- the CLI with broken configuration ---------------------------------------------------------


def run_cli(tmp_path: Path, *args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVHOPP_")}
    env.update(environ)
    return subprocess.run(
        [str(BIN / "avhopp"), *args], capture_output=True, text=True, env=env, timeout=60,
        cwd=tmp_path, check=False,
    )


def test_cli_with_broken_production_config_prints_the_problem_without_a_traceback(
    tmp_path: Path,
) -> None:
    result = run_cli(tmp_path, "users", "list", AVHOPP_ENV="production",
                     AVHOPP_INSTANCE_PATH=str(tmp_path))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    assert "SECRET_KEY is missing" in output
    assert "KEY_FILE" in output


def test_cli_with_a_bad_value_prints_the_setting_without_a_traceback(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "users", "list", AVHOPP_ENV="testing",
                     AVHOPP_INSTANCE_PATH=str(tmp_path), AVHOPP_SESSION_IDLE_MINUTES="abc")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    assert "AVHOPP_SESSION_IDLE_MINUTES" in output


def test_production_refuses_a_secret_key_file_readable_by_others(tmp_path):
    from avhopp.config import ConfigError, load_config
    from avhopp.crypto.keyring import generate_key_file, write_key_file

    key_file = tmp_path / "keys.json"
    write_key_file(key_file, generate_key_file())
    key_file.chmod(0o400)
    secret_file = tmp_path / "secret_key"
    secret_file.write_text("p" * 48)
    secret_file.chmod(0o644)
    environ = {"AVHOPP_ENV": "production", "AVHOPP_KEY_FILE": str(key_file),
               "AVHOPP_SECRET_KEY_FILE": str(secret_file), "AVHOPP_HTTPS": "true",
               "AVHOPP_INSTANCE_PATH": str(tmp_path)}
    with pytest.raises(ConfigError, match=r"SECRET_KEY_FILE .* mode 0644"):
        load_config(environ=environ)
    secret_file.chmod(0o400)
    assert load_config(environ=environ)["SECRET_KEY"] == "p" * 48
