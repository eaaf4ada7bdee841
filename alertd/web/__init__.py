"""The Flask application: console pages, the JSON API and public routes."""
