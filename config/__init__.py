"""Settings files: defaults and data. No logic lives here."""
