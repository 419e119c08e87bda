"""Application factory: reads like a table of contents of what the app is made of."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, request, session
from werkzeug.middleware.proxy_fix import ProxyFix

from avhopp import db, extensions, logs, security, translation, widgets
from avhopp.config import load_config
from avhopp.errors import register_error_handlers

logger = logging.getLogger(__name__)

SUPPORTED_LOCALES = ("sv", "en")


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    config = load_config(overrides)
    app = Flask(__name__, instance_path=config["INSTANCE_PATH"], instance_relative_config=False)
    app.config.update(config)
    configure_flask(app)
    logs.configure(app.config["LOG_LEVEL"])
    db.init_app(app, db.Database(app.config["DATABASE_URL"]))
    init_keys(app)
    init_extensions(app)
    register_blueprints(app)
    security.init_app(app)
    register_error_handlers(app, on_csrf_rejected=_record_csrf_rejection)
    return app


def configure_flask(app: Flask) -> None:
    # Templates are kept in a plain dict, not Jinja's LRU of 400: every include and import
    # looks its template up, and the LRU's lookup scans its queue (a few per cent of a track
    # page). The templates are the app's own, a bounded set.
    app.jinja_options = {**app.jinja_options, "cache_size": -1}
    app.config.update(
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the server-side session
        WTF_I18N_ENABLED=True,
        BABEL_DEFAULT_LOCALE=app.config["DEFAULT_LOCALE"],
        BABEL_TRANSLATION_DIRECTORIES="translations",
        TEMPLATES_AUTO_RELOAD=False,
    )
    if int(app.config.get("TRUSTED_PROXIES", 0)) > 0:
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def init_keys(app: Flask) -> None:
    from avhopp.encryption.services import FieldCrypto
    from avhopp.keys import load_keyring

    keyring = load_keyring(app.config)
    app.extensions["avhopp.keys"] = keyring
    crypto = FieldCrypto(
        keyring,
        population=int(app.config["BLIND_INDEX_POPULATION"]),
        cache_seconds=float(app.config["DATA_KEY_CACHE_SECONDS"]),
    )
    app.extensions["avhopp.field_crypto"] = crypto
    # Every session of this app can seal and open encrypted fields.
    db.get_database(app).attach_field_crypto(crypto)


def init_extensions(app: Flask) -> None:
    from avhopp.accounts.models import User
    from avhopp.accounts.services import AccountPolicy
    from avhopp.accounts.sessions import DatabaseSessionInterface

    app.session_interface = DatabaseSessionInterface()
    app.extensions["avhopp.account_policy"] = AccountPolicy.from_config(app.config)
    extensions.csrf.init_app(app)
    extensions.babel.init_app(app, locale_selector=_select_locale)
    translation.install(app, extensions.babel)
    widgets.install()

    login_manager = extensions.login_manager
    login_manager.init_app(app)
    # Our server-side sessions rotate ids and expire on their own; Flask-Login's "strong"
    # protection would add nothing and its remember-me cookie is never used (S4).
    login_manager.session_protection = None
    login_manager.login_view = "accounts.login"

    @login_manager.user_loader
    def _load_user(user_id: str) -> User | None:
        import uuid

        try:
            user = db.request_session().get(User, uuid.UUID(user_id))
        except ValueError:
            return None
        # Re-read every request: deactivation and role changes apply at once (Z5).
        return user if user is not None and user.is_active else None


def _select_locale() -> str:
    chosen = session.get("locale")
    if chosen in SUPPORTED_LOCALES:
        return str(chosen)
    return str(current_app.config["DEFAULT_LOCALE"])


def register_blueprints(app: Flask) -> None:
    from avhopp.accounts.views import bp as accounts_bp
    from avhopp.audit.views import bp as audit_bp
    from avhopp.cases.views import bp as cases_bp
    from avhopp.casework.views import bp as casework_bp
    from avhopp.followups.views import bp as followups_bp
    from avhopp.main.views import bp as main_bp
    from avhopp.privacy.views import bp as privacy_bp
    from avhopp.relatives.views import bp as relatives_bp
    from avhopp.stats.views import bp as stats_bp

    app.register_blueprint(main_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(audit_bp)
    app.register_blueprint(casework_bp)
    app.register_blueprint(cases_bp)
    app.register_blueprint(privacy_bp)
    app.register_blueprint(stats_bp)
    app.register_blueprint(relatives_bp)
    app.register_blueprint(followups_bp)


def _record_csrf_rejection() -> None:
    from flask_login import current_user

    from avhopp.audit.services import record

    session_db = db.request_session()
    session_db.rollback()
    actor = current_user if current_user.is_authenticated else None
    record(session_db, action="security.csrf_rejected", actor=actor, outcome="denied",
           details={"endpoint": (request.endpoint or "unknown")[:64]})
    session_db.commit()
