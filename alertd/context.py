"""What every service needs: settings, the database, the task publisher and the channels."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

# Every mapper must be known before the first query resolves a foreign key.
import alertd.models  # noqa: F401 - imported for its side effect
from alertd.alerts.criteria import RuleSet, load_rule_sets
from alertd.audit.keys import head_mac_key, load_signing_key
from alertd.audit.services import record_refusal
from alertd.broker import Publisher
from alertd.channels.registry import Registry
from alertd.db import Database
from alertd.settings import Settings


@dataclass
class Context:
    settings: Settings
    db: Database
    publisher: Publisher = field(repr=False)
    # One registry per ALERTD_CHANNELS value: tests change the settings of a live context.
    _registries: dict[str, Registry] = field(default_factory=dict, repr=False)

    @property
    def channels(self) -> Registry:
        """The enabled channels, loaded once per context."""
        spec = self.settings.CHANNELS
        if spec not in self._registries:
            self._registries[spec] = Registry.from_spec(spec)
        return self._registries[spec]

    def use_channels(self, registry: Registry) -> None:
        """Replace the enabled channels (tests with scripted channels)."""
        self._registries[self.settings.CHANNELS] = registry

    @cached_property
    def rule_sets(self) -> dict[str, RuleSet]:
        return load_rule_sets(self.settings.criteria_dir)

    def close(self) -> None:
        self.db.dispose()


def make_context(settings: Settings, publisher: Publisher | None = None) -> Context:
    # Every mapper must be known before the first query resolves a foreign key.

    # Owner only: it holds the embedded database, the secret key and the audit key.
    settings.instance_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = Database(
        settings.database_url,
        audit_mac_key=head_mac_key(load_signing_key(settings)),
        on_refusal=record_refusal,
    )
    return Context(settings, db, publisher or Publisher(settings))
