"""The data subject: a Person with their own data key and encrypted identity fields."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.orm import Mapped, mapped_column

from avhopp.db import Base, utcnow
from avhopp.encryption.orm import Encrypted

INTERNAL = {"data_class": "internal"}


class Person(Base):
    """A person the organisation supports (a defector or a relative). Everything that
    identifies them is encrypted under their own data key; search is by blind index only."""

    __tablename__ = "person"
    __encryption_subject__ = "id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, info=INTERNAL)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, info=INTERNAL)
    # Optimistic locking (SECURITY.md D6).
    version: Mapped[int] = mapped_column(default=1, info=INTERNAL)

    name = Encrypted[str]("text")
    alias = Encrypted[str]("text")
    personnummer = Encrypted[str]("text", index="personnummer", data_class="sensitive")
    birth_year = Encrypted[int]("int")
    phone = Encrypted[str]("text", index="phone")
    email = Encrypted[str]("text", index="email")
    address = Encrypted[str]("text")

    __mapper_args__ = {"version_id_col": version}

    def __init__(self, **kwargs: Any) -> None:
        # The id is part of every field's associated data, so it exists before the INSERT.
        kwargs.setdefault("id", uuid.uuid4())
        super().__init__(**kwargs)
