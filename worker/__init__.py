"""Celery workers: ``celery -A worker.app worker -Q interactive,bulk``."""
