"""Default settings. Each one can be overridden by an environment variable of the same name
prefixed ``ALERTD_`` (``DATABASE_URL`` -> ``ALERTD_DATABASE_URL``); README lists them all."""

# Where the embedded default keeps its SQLite file, secret key, photos and broker queue.
INSTANCE_PATH = "instance"
# Empty means a SQLite file in the instance folder.
DATABASE_URL = ""
# Empty means the embedded broker: kombu's SQLAlchemy transport on broker.sqlite3 in the
# instance folder (sqla+sqlite:///...), no server.
BROKER_URL = ""
# Empty means a random key generated once and stored in the instance folder.
SECRET_KEY = ""
# The address the public reaches this service at; CAP links, SMS links and Twilio's signature
# check use it, so behind a proxy it must be the outside address. Unset, it is
# http://HOST:PORT, so ALERTD_PORT moves it too.
PUBLIC_URL = "http://127.0.0.1:8000"
# How many reverse proxies in front of the web processes set X-Forwarded-For and -Proto.
# 0 (no proxy) trusts no such header; behind one nginx or load balancer, set 1.
PROXY_HOPS = 0
HOST = "127.0.0.1"
PORT = 8000

# Alerts are short-lived (DOMAIN.md section 2): three hours unless the officer says otherwise.
DEFAULT_ALERT_MINUTES = 180
# The one-click extension on the alert page adds this much.
EXTEND_MINUTES = 60
# The console warns this long before an alert expires.
EXPIRY_WARNING_MINUTES = 30
MAX_ALERT_HOURS = 72

# Photos: JPEG or PNG only, at most this many bytes.
MAX_PHOTO_BYTES = 5_000_000

# The channels every approved version is dispatched to, by name or "module:Class".
CHANNELS = "cap,log,webhook,sms"

# Criteria rule sets live as JSON files; empty means config/criteria.
CRITERIA_DIR = ""
DEFAULT_JURISDICTION = "us-doj"

# CAP identity.
CAP_SENDER = "alerts@alertd.invalid"
CAP_SENDER_NAME = "alertd"
CAP_IDENTIFIER_PREFIX = "alertd"
# The IANA time zone (e.g. America/Chicago) whose offset CAP times carry and the console and the
# public page show. IPAWS treats a zero offset on a US alert as an error, so set it there.
TIMEZONE = "UTC"
# The US IPAWS profile on CAP messages: <code>IPAWSv1.0</code>, EAS-ORG=CIV, one SAME code.
CAP_IPAWS = False
# <source> of every CAP message: the system or desk it comes from (e.g. "Springfield PD
# dispatch"); empty writes none.
CAP_SOURCE = ""
# A photo at most this many bytes also travels inside the CAP message as <derefUri> (base64),
# as IPAWS police alerts carry it, for receivers that cannot fetch the <uri>; 0 never inlines.
# Base64 adds a third, so the default keeps a message with its photo well under 150 kB.
CAP_DEREF_MAX_BYTES = 100_000
# PEM files of the key and X.509 certificate that sign every CAP message; empty means unsigned.
CAP_SIGNING_KEY = ""
CAP_SIGNING_CERT = ""
# A folder to write the feeds and CAP documents into on every change, for nginx or a CDN to
# serve at static-file speed; empty means only the Flask routes serve them.
FEED_DIR = ""
# How long a cancelled or resolved alert's last message stays in the feeds (DOMAIN.md section 4:
# Google Public Alerts expects ended alerts to leave after 24 to 48 hours).
FEED_RETENTION_HOURS = 24

# The audit trail's Ed25519 signing key (PEM, PKCS#8); empty means one generated once into the
# instance folder. Production keeps it outside the database machine's reach (docs/audit.md).
AUDIT_SIGNING_KEY = ""
# Where signed checkpoints of the audit trail are written; empty means the instance folder's
# audit-checkpoints. Production points it at storage the database's users cannot rewrite.
AUDIT_CHECKPOINT_DIR = ""
# The sweeper writes a checkpoint when the trail has grown and the last one is this old;
# every publication writes one at once.
AUDIT_CHECKPOINT_SECONDS = 300.0

# Login rate limiting: this many failures per account or per address within the window.
LOGIN_MAX_FAILURES = 5
LOGIN_WINDOW_SECONDS = 900

# Delivery machinery.
SWEEP_SECONDS = 5.0
# Work left untaken longer than this means dispatch is stalled: the console shows a banner,
# `alertd serve` restarts its worker, `alertd health` fails.
STALL_SECONDS = 60.0
# Delivery counts on the alert page and in the API are at most this old: during a national
# fan-out each count reads every delivery, and every polling console would otherwise make one
# (0: count on every request).
PROGRESS_CACHE_SECONDS = 1.0
OUTBOX_REPUBLISH_SECONDS = 5.0
DELIVERY_LEASE_SECONDS = 60
# Deliveries per delivery task (one claim, one broker message); a channel may ask for fewer
# (Channel.task_size: webhooks keep 100). Each task costs a claim transaction and a broker
# round trip besides its sub-batches: at 100 a task of two 50-request sub-batches made three
# commits, at 500 ten make eleven. Planning chunk size: alertd/channels/dispatch/planning.py
# (PLAN_CHUNK).
DELIVERY_BATCH_SIZE = 500
# Requests of a non-idempotent channel (SMS) marked attempted, sent and recorded together: a
# crash leaves at most this many 'unknown', and a cancel stops new requests within this many.
# The bound is 50. Every sub-batch costs one commit and one audit entry under the
# chain's lock, whatever its size (docs/benchmarks.md, "Send batch size": 0.31 ms a delivery
# at 50 against 0.51 at 25 on PostgreSQL, 0.20 against 0.38 on SQLite, in process), so the
# largest allowed size is the default.
SEND_BATCH = 50
DELIVERY_MAX_ATTEMPTS = 8
# The broker's visibility timeout; every delay is kept well under it (RELIABILITY.md section 1).
VISIBILITY_TIMEOUT_SECONDS = 300
# How long a web request may wait on the broker before leaving the outbox row to the relay.
PUBLISH_TIMEOUT_SECONDS = 2.0

# /metrics wants "Authorization: Bearer <this>"; empty means only clients on this machine
# (loopback addresses) may read it.
METRICS_TOKEN = ""
# Log lines: "json" (one object per line, with alert, version and delivery ids) or "text".
LOG_FORMAT = "json"

# Webhooks (DOMAIN.md section 6). Networks that may be reached although they are not public
# (comma-separated, e.g. "127.0.0.1/32" for a receiver on this machine); empty refuses them all.
WEBHOOK_ALLOW = ""
# Refuse plain-http endpoint URLs; only a test or a closed network turns this off.
WEBHOOK_HTTPS_ONLY = True
# Per request: time to connect, and time for the whole answer (a slow receiver is cut off).
WEBHOOK_CONNECT_SECONDS = 2.0
WEBHOOK_READ_SECONDS = 5.0
# How much of an answer is read: enough for a Mastodon or Telegram reply, never a huge body.
WEBHOOK_MAX_RESPONSE_BYTES = 65536
# Requests in flight at once in one delivery task, so hanging endpoints cannot hold up the rest.
# A task then lasts at most ceil(DELIVERY_BATCH_SIZE / this) x (connect + read) seconds (4 x 7 s
# with the defaults), well inside DELIVERY_LEASE_SECONDS and Celery's soft time limit (90 s).
WEBHOOK_CONCURRENCY = 32
# Consecutive failed requests after which an endpoint's circuit opens and it is left alone.
WEBHOOK_BREAKER_FAILURES = 5

# SMS (DOMAIN.md section 5). "console" keeps each text in a table shown in the console, marked
# as not sent; "twilio" sends through Twilio with TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and
# TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID.
SMS_BACKEND = "console"
# Texts per second across every worker (the sender's throughput: ~1/s a long code, 100/s a short
# code); 0 means no limit of our own.
SMS_RATE = 0.0
SMS_CONCURRENCY = 16
# Numbers typed without "+country" are read in this region (e.g. "US"); empty refuses them.
SMS_DEFAULT_REGION = ""
# Words a member of the public may text after JOIN, each naming a geocode: "LA=SAME=006037".
SMS_JOIN_AREAS = ""
# Another base URL for the Twilio API, e.g. a simulator on loopback; empty means Twilio's own.
TWILIO_API_BASE = ""
