"""The public side every channel links to: the alert page at ``/a/<public_id>`` (and
``/alerts/<public_id>``), photos at their stable URLs, and the health check."""
