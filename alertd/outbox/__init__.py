"""The transactional outbox: tasks written with the decision that needs them, sent after the
commit, and re-sent by the relay until a worker has taken them."""
