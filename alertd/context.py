"""What every service needs: settings, the database and the task publisher."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from alertd.alerts.criteria import RuleSet, load_rule_sets
from alertd.audit.keys import head_mac_key, load_signing_key
from alertd.broker import Publisher
from alertd.db import Database
from alertd.settings import Settings


@dataclass
class Context:
    settings: Settings
    db: Database
    publisher: Publisher = field(repr=False)

    @cached_property
    def rule_sets(self) -> dict[str, RuleSet]:
        return load_rule_sets(self.settings.criteria_dir)

    def close(self) -> None:
        self.db.dispose()


def make_context(settings: Settings, publisher: Publisher | None = None) -> Context:
    # Every mapper must be known before the first query resolves a foreign key.
    import alertd.models  # noqa: F401 - models import services that import this module

    settings.instance_path.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url, audit_mac_key=head_mac_key(load_signing_key(settings)))
    return Context(settings, db, publisher or Publisher(settings))
