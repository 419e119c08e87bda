"""Alembic environment: runs against the URL avhopp.migrate put in the config."""

from __future__ import annotations

from alembic import context

# Importing the models registers their tables on Base.metadata; autogenerate and `alembic check`
# compare against exactly these.
import avhopp.accounts.models
import avhopp.audit.models
import avhopp.casework.models
import avhopp.encryption.models
from avhopp.db import Base, make_engine

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
