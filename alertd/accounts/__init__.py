"""Users, roles, passwords, sessions and API tokens."""
