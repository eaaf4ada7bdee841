"""Idempotency keys: a button or API call repeated with the same key acts once and answers
with the first outcome."""
