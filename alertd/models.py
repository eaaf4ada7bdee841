"""Imports every model so that ``Base.metadata`` knows all tables (Alembic and tests)."""

from alertd.accounts.models import ApiToken, User
from alertd.alerts.models import Alert, Photo, Proposal, Version
from alertd.audit.models import AuditEntry, AuditHead
from alertd.channels.cap.models import CapDocument
from alertd.channels.models import Delivery, Dispatch
from alertd.channels.sms.models import ConsoleText as SmsConsoleText
from alertd.channels.sms.models import GatewayStatus as SmsGatewayStatus
from alertd.channels.sms.models import Subscriber as SmsSubscriber
from alertd.channels.sms.models import SubscriberArea as SmsSubscriberArea
from alertd.channels.webhooks.models import Attempt as WebhookAttempt
from alertd.channels.webhooks.models import Endpoint as WebhookEndpoint
from alertd.db import Base
from alertd.idempotency.models import IdempotencyKey
from alertd.locks import SchedulerLock
from alertd.outbox.models import OutboxMessage

__all__ = [
    "Alert",
    "ApiToken",
    "AuditEntry",
    "AuditHead",
    "Base",
    "CapDocument",
    "Delivery",
    "Dispatch",
    "IdempotencyKey",
    "OutboxMessage",
    "Photo",
    "Proposal",
    "SchedulerLock",
    "SmsConsoleText",
    "SmsGatewayStatus",
    "SmsSubscriber",
    "SmsSubscriberArea",
    "User",
    "Version",
    "WebhookAttempt",
    "WebhookEndpoint",
]
