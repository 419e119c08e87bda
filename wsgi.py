"""WSGI entry point for gunicorn: `gunicorn wsgi:app`."""

from avhopp.app import create_app

app = create_app()
