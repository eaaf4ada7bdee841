"""Alembic migrations, run by ``alertd init``."""
