"""Celery app and thin tasks (the pipeline issue)."""
