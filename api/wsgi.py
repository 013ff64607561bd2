"""For WSGI servers: ``gunicorn 'api.wsgi:app'``."""

from core.logs import configure_logging

from . import create_app

configure_logging()
app = create_app()
