"""The tamper-evident audit trail: one entry per action and per refused action."""
