"""Alembic environment: runs against the URL avhopp.migrate put in the config."""

from __future__ import annotations

from alembic import context

from avhopp.db import Base, make_engine
from avhopp.migrate import import_models

import_models()

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `avhopp db upgrade`")
run_migrations_online()
