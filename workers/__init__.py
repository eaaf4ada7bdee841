"""The Celery process: the app, its schedule, and thin tasks that call alertd's services."""
