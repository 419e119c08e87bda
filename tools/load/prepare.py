"""Prepares a load-test database: synthetic tracks, load users with known TOTP seeds, a plan."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from sqlalchemy import select

from avhopp.accounts import services as accounts
from avhopp.app import create_app
from avhopp.casework.models import Person, TeamMember, Track
from avhopp.db import get_database, refresh_statistics, utcnow


def prepare(*, tracks: int, users: int, per_user: int, out: Path) -> None:
    from avhopp.cases.seed import bulk_seed_tracks, ensure_staff, seed_tracks

    app = create_app()
    policy = app.extensions["avhopp.account_policy"]
    keys = app.extensions["avhopp.keys"]
    database = get_database(app)
    with app.app_context():
        if tracks > 50:  # the data set: the bench's bulk path (real encryption, fewer events)
            with database.scope() as session:
                staff = ensure_staff(session, policy=policy)
            bulk_seed_tracks(database.factory, count=tracks, staff=staff, rng_seed=7)
        else:  # a few tracks through the real services (crash and security runs)
            seed_tracks(database.factory, count=tracks, policy=policy, rng_seed=7)
        rng = random.Random(11)  # noqa: S311  # nosec B311  synthetic load data
        plan: dict[str, list] = {"users": [], "personnummer": []}
        with database.scope() as session:
            track_ids = list(session.scalars(select(Track.id).where(Track.kind == "defector")))
            for n in range(users):
                name = f"load.worker{n:02d}"
                user, _one_time = accounts.create_user(
                    session, actor=None, username=name, role="support_worker", policy=policy)
                password = f"Lasttest-{n:02d}-{rng.getrandbits(64):x}"
                user.password_hash = accounts.hash_password(password, policy=policy)
                user.must_change_password = False
                secret = accounts.new_totp_secret()
                kek_id, blob = keys.wrap(secret.encode(), accounts._totp_aad(user.id))
                user.totp_secret_wrapped, user.totp_kek_id = blob, kek_id
                user.totp_enrolled_at = utcnow()
                session.flush()
                mine = rng.sample(track_ids, min(per_user, len(track_ids)))
                session.add_all(TeamMember(track_id=t, user_id=user.id) for t in mine)
                plan["users"].append({"username": name, "password": password, "totp": secret,
                                      "tracks": [str(t) for t in mine]})
            # A few real (synthetic) personnummer to search for, decrypted through the app.
            people = session.scalars(select(Person).limit(50)).all()
            plan["personnummer"] = [p.personnummer for p in people if p.personnummer]
    # What the scheduler's daily statistics duty would have done for a database this size.
    refresh_statistics(database.engine)
    out.write_text(json.dumps(plan))


if __name__ == "__main__":
    prepare(tracks=int(sys.argv[1]), users=int(sys.argv[2]), per_user=int(sys.argv[3]),
            out=Path(sys.argv[4]))
