"""CAP 1.2 messages: build, validate, sign and verify.

Pure functions over bytes and frozen dataclasses; no database and no Flask, so the service layer,
the workers and the CLI can all share them.
"""
