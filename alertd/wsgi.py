"""The WSGI entry point for gunicorn: ``gunicorn alertd.wsgi:app``."""

from alertd.web.app import create_app

app = create_app()
