"""Alembic driven from code, so every CLI command honours the same configuration."""

from __future__ import annotations

import importlib

from alembic import command
from alembic.config import Config

from avhopp.config import PROJECT_ROOT
from avhopp.db import make_engine, refresh_statistics

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
# Every module that defines tables. Importing them registers the tables on Base.metadata, which
# autogenerate and `alembic check` compare with the migrated schema.
MODEL_MODULES = (
    "avhopp.accounts.models",
    "avhopp.audit.models",
    "avhopp.encryption.models",
    "avhopp.casework.models",
    "avhopp.cases.models",
    "avhopp.privacy.models",
    "avhopp.relatives.models",
    "avhopp.followups.models",
)


def import_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Date-prefixed revision files, so the directory lists in the order work was done.
    cfg.set_main_option(
        "file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s"
    )
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
    # Fresh statistics for the new schema (and its indexes) before anything is served.
    engine = make_engine(database_url)
    try:
        refresh_statistics(engine)
    finally:
        engine.dispose()


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def current(database_url: str) -> None:
    command.current(alembic_config(database_url), verbose=False)


def check(database_url: str) -> None:
    """Raise if the models and the migrated schema differ (alembic check)."""
    command.check(alembic_config(database_url))
