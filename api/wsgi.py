"""For WSGI servers: ``gunicorn 'api.wsgi:app'``."""

from . import create_app

app = create_app()
