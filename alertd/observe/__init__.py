"""What operators watch from outside: Prometheus metrics and structured JSON logs."""
