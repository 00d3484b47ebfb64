"""Settings for every profile.

`BROKAGE_PROFILE` picks the wiring: `embedded` (default, no servers), `test`
(the fast test tier), `dev` (real services on loopback, started by `scripts/services.sh`) and
`prod` (everything from the environment). Any value below can be overridden by environment
variables; the development defaults match what `scripts/services.sh` starts.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from brokage.observability import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("BROKAGE_VAR_DIR", BASE_DIR / "var"))

PROFILE = os.environ.get("BROKAGE_PROFILE", "embedded")
if PROFILE not in {"embedded", "test", "dev", "prod"}:
    raise ImproperlyConfigured(f"BROKAGE_PROFILE must be embedded, test, dev or prod, not {PROFILE!r}")

USES_REAL_SERVICES = PROFILE in {"dev", "prod"}


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", PROFILE != "prod")
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if PROFILE == "prod":
    if not SECRET_KEY:
        raise ImproperlyConfigured("The prod profile refuses to start without SECRET_KEY.")
    if DEBUG:
        raise ImproperlyConfigured("The prod profile refuses to start with DEBUG on.")
elif not SECRET_KEY:
    SECRET_KEY = "brokage-development-only-key-not-for-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# HTTPS (docs/security.md): on by default on the prod profile, which `check --deploy` must pass;
# each can be turned off or tuned from the environment.
SECURE_PROD = PROFILE == "prod"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", SECURE_PROD)
# Probes and scrapers on the private network speak plain HTTP.
SECURE_REDIRECT_EXEMPT = env_list("SECURE_REDIRECT_EXEMPT", r"^health/,^metrics/?$")
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000" if SECURE_PROD else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", SECURE_PROD)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", SECURE_PROD)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", SECURE_PROD)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", SECURE_PROD)
# "HEADER,value": the request came over HTTPS when the TLS-terminating proxy set HEADER to value.
# Only safe behind a proxy that sets (or strips) that header on every request; empty: not trusted.
_proxy_ssl_header = env_list("SECURE_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO,https" if SECURE_PROD else "")
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) if len(_proxy_ssl_header) == 2 else None

INSTALLED_APPS = [
    "daphne",
    "brokage.admin_site.BrokageAdminConfig",  # django.contrib.admin with the console's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    # Refresh tokens rotate, and a used or signed-out one is blacklisted (default alias).
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "channels",
    "brokage",
    "customers",
    "orders",
    "assets",
    "processor",
    "notifications",
    "audit",
    "operations",  # not a context: cross-context checks (reconcile) through the contexts' selectors
]

MIDDLEWARE = [
    "brokage.metrics.MetricsMiddleware",  # outermost: request latency includes every other layer
    # Times the whole stack below and sees the final status code (brokage/telemetry.py).
    "brokage.telemetry.TelemetryMiddleware",
    "brokage.observability.CorrelationIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: a key belongs to the person asking (brokage/idempotency.py).
    "brokage.idempotency.IdempotencyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Answers a sign-in form locked out by repeated failures (see "Sign-in lockout" below).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "brokage.urls"
APPEND_SLASH = False
WSGI_APPLICATION = "brokage.wsgi.application"
ASGI_APPLICATION = "brokage.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Relational databases: one alias per context -------------------------------------------------

RELATIONAL_CONTEXTS = {
    # alias -> (app label, PostgreSQL database, environment variable)
    "default": ("customers", "brokage_customers", "DATABASE_URL_CUSTOMERS"),
    "orders": ("orders", "brokage_orders", "DATABASE_URL_ORDERS"),
    "assets": ("assets", "brokage_assets", "DATABASE_URL_ASSETS"),
    "processor": ("processor", "brokage_processor", "DATABASE_URL_PROCESSOR"),
}

PG_DEFAULT_URL = "postgresql://brokage:brokage@127.0.0.1:55432/{database}"
# Persistent connections (CONN_MAX_AGE) without a `SELECT 1` health check at the start of every
# request on every alias it touches: that check was one more round trip per alias per request. The
# price: after a database restart, the first request on each stale pooled connection fails (503,
# `brokage.api.exception_handler`) and Django drops that connection at the end of the request, so
# the next request reconnects. `DB_CONN_HEALTH_CHECKS=1` brings the checks back.
DB_CONN_MAX_AGE = int(os.environ.get("DB_CONN_MAX_AGE", "600"))
DB_CONN_HEALTH_CHECKS = env_bool("DB_CONN_HEALTH_CHECKS", False)


# Server-side parameter binding with psycopg's automatic prepared statements: a statement run
# DB_PREPARE_THRESHOLD times on a connection is prepared there, so PostgreSQL parses and plans it
# once instead of on every execution, and the client sends the parameters as they are instead of
# quoting them into the SQL text. `DB_PREPARE_THRESHOLD=` (empty) goes back to client-side binding,
# which a connection pooler in transaction mode (PgBouncer) needs.
DB_PREPARE_THRESHOLD = os.environ.get("DB_PREPARE_THRESHOLD", "5")


def _postgresql(url: str) -> dict:
    database = dj_database_url.parse(url, conn_max_age=DB_CONN_MAX_AGE, conn_health_checks=DB_CONN_HEALTH_CHECKS)
    if DB_PREPARE_THRESHOLD and database["ENGINE"] == "django.db.backends.postgresql":
        database.setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=int(DB_PREPARE_THRESHOLD))
    return database


def _relational_database(alias: str) -> dict:
    _app, pg_name, env_name = RELATIONAL_CONTEXTS[alias]
    url = os.environ.get(env_name)
    if url:
        return _postgresql(url)
    if PROFILE == "prod":
        raise ImproperlyConfigured(f"The prod profile needs {env_name}.")
    if PROFILE == "dev":
        return _postgresql(PG_DEFAULT_URL.format(database=pg_name))
    sqlite_dir = VAR_DIR / "db"
    sqlite_dir.mkdir(parents=True, exist_ok=True)
    return {
        # Django's SQLite backend whose writers take turns in the process (brokage/sqlite/base.py).
        "ENGINE": "brokage.sqlite",
        "NAME": sqlite_dir / f"{pg_name}.sqlite3",
        # IMMEDIATE takes the write lock up front, so two writers queue instead of deadlocking.
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
        "TEST": {"NAME": ":memory:"},  # (said outright: pytest-django recognises only Django's own engine)
    }


DATABASES = {alias: _relational_database(alias) for alias in RELATIONAL_CONTEXTS}
DATABASE_ROUTERS = ["brokage.db_router.ContextRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Documents: one MongoDB database per document context ----------------------------------------

MONGODB_URL = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27018/")
DOCUMENT_BACKEND = {"embedded": "montydb", "test": "mongomock"}.get(PROFILE, "mongodb")
DOCUMENT_BACKEND = os.environ.get("BROKAGE_DOCUMENT_BACKEND", DOCUMENT_BACKEND)
DOCUMENT_DIR = VAR_DIR / "documents"
# BROKAGE_<CONTEXT>_DOCUMENT_DATABASE points a context elsewhere (the restore drill's scratch copies).
DOCUMENT_DATABASES = {
    context: os.environ.get(f"BROKAGE_{context.upper()}_DOCUMENT_DATABASE", name)
    for context, name in {"notifications": "notifications", "audit": "audit_logs"}.items()
}

# --- Redis: idempotency keys, locks, sessions, rate limits, Celery broker ------------------------

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6380/0")
REDIS_BACKEND = "redis" if USES_REAL_SERVICES else "fakeredis"
REDIS_BACKEND = os.environ.get("BROKAGE_REDIS_BACKEND", REDIS_BACKEND)

if REDIS_BACKEND == "redis":
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
            "KEY_PREFIX": "brokage",
        }
    }
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    SESSION_ENGINE = "django.contrib.sessions.backends.db"
# In this process only, bounded (the oldest third goes when full): what is cheap to read again and
# read far more often than it changes, such as the contacts notifications are sent to.
CACHES["process"] = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "brokage-process",
    "OPTIONS": {"MAX_ENTRIES": 20_000},
}

# --- Event bus -------------------------------------------------------------------------------------

KAFKA_BOOTSTRAP_SERVERS = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
EVENT_BUS = os.environ.get("BROKAGE_EVENT_BUS", "kafka" if USES_REAL_SERVICES else "inprocess")
KAFKA_TOPIC_PREFIX = os.environ.get("BROKAGE_KAFKA_TOPIC_PREFIX", "brokage.")
OUTBOX_BATCH_SIZE = int(os.environ.get("BROKAGE_OUTBOX_BATCH_SIZE", "500"))
# How long one relay pass waits for Kafka to acknowledge a batch before counting a failed attempt.
OUTBOX_DELIVERY_TIMEOUT_SECONDS = float(os.environ.get("BROKAGE_OUTBOX_DELIVERY_TIMEOUT", "5"))
# Who publishes after a commit: "thread" (a relay thread in the writing process; dev and prod) or
# "celery" (a relay worker per context, docs/relay.md) or "off" (the beat alone). The beat's
# relay_all is the safety net.
OUTBOX_RELAY_MODE = os.environ.get("BROKAGE_OUTBOX_RELAY_MODE", "thread" if USES_REAL_SERVICES else "celery")
# With "celery", how a commit wakes its relay worker: "notify" (PostgreSQL NOTIFY from a trigger on
# the outbox, at commit; only sessions that carry the option below notify) or "task" (a Redis flag
# and at most one queued task per context).
OUTBOX_RELAY_WAKE = os.environ.get("BROKAGE_OUTBOX_RELAY_WAKE", "notify")
# How long a relay worker lets commits gather after a wake-up before it drains (fewer, bigger drains
# for that much latency per hop); 0: at once.
OUTBOX_RELAY_DEBOUNCE_SECONDS = float(os.environ.get("BROKAGE_OUTBOX_RELAY_DEBOUNCE", "0"))
if OUTBOX_RELAY_MODE == "celery" and OUTBOX_RELAY_WAKE == "notify":
    for _database in DATABASES.values():
        if _database["ENGINE"] == "django.db.backends.postgresql":
            _options = _database.setdefault("OPTIONS", {})
            _options["options"] = f"{_options.get('options', '')} -c brokage.outbox_notify=on".strip()
# With relay threads, how long the beat leaves a fresh row to the thread of the process that wrote it.
OUTBOX_RELAY_GRACE_SECONDS = float(os.environ.get("BROKAGE_OUTBOX_RELAY_GRACE", "5"))
# How long an order's saga may wait for its reservation before the order is rejected
# (RESERVATION_EXPIRED). A confirmed order's reservation is held until it settles or is canceled.
RESERVATION_TTL_SECONDS = float(
    os.environ.get("BROKAGE_RESERVATION_TTL_SECONDS", os.environ.get("BROKAGE_ASSETS_RESERVATION_TTL_SECONDS", "900"))
)
# How often a consumer retries a failing handler before sending the message to `<topic>.dlq`.
CONSUMER_MAX_ATTEMPTS = int(os.environ.get("BROKAGE_CONSUMER_MAX_ATTEMPTS", "3"))
# A handler that failed because a dependency is down is retried with backoff up to this many seconds
# apart, for as long as the outage lasts (brokage/transient.py); the relay waits between passes likewise.
CONSUMER_BACKOFF_MAX_SECONDS = float(os.environ.get("BROKAGE_CONSUMER_BACKOFF_MAX", "5"))
OUTBOX_BACKOFF_MAX_SECONDS = float(os.environ.get("BROKAGE_OUTBOX_BACKOFF_MAX", "5"))
# Where a process waiting an outage out says so, for /health/ready (brokage/transient.py).
RUN_STATE_DIR = Path(os.environ.get("BROKAGE_RUN_STATE_DIR", VAR_DIR / "run"))
# Consumers off the order path (the audit trail, notices) let the broker gather a batch for up to
# this many milliseconds instead of fetching each message as it lands: on a busy system one fetch
# and one document write per half second instead of one per event. The saga's consumers fetch at once.
CONSUMER_FETCH_LINGER_MS = {
    "audit": int(os.environ.get("BROKAGE_AUDIT_FETCH_LINGER_MS", "500")),
    "notifications": int(os.environ.get("BROKAGE_NOTIFICATIONS_FETCH_LINGER_MS", "500")),
}

# --- Celery ---------------------------------------------------------------------------------------

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL if USES_REAL_SERVICES else "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not USES_REAL_SERVICES
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE = {
    "relay-all-outboxes": {"task": "brokage.relay_all", "schedule": 2.0},
}

# --- Daily lifecycle jobs (brokage/jobs.py): UTC "HH:MM" each; an empty value leaves one out of the beat.
BACKUP_DEST = os.environ.get("BROKAGE_BACKUP_DEST", str(VAR_DIR / "backups"))  # a folder or s3://bucket/prefix
LIFECYCLE_JOBS = {
    "archive_orders": {
        "at": os.environ.get("BROKAGE_ARCHIVE_ORDERS_AT", "01:30"),
        "command": ["archive_orders", "--no-progress"],
    },
    "audit_tiering": {"at": os.environ.get("BROKAGE_AUDIT_TIERING_AT", "01:45"), "command": ["audit_tiering"]},
    "backup": {
        "at": os.environ.get("BROKAGE_BACKUP_AT", "02:15"),
        "command": ["backup", "--dest", BACKUP_DEST, "--no-progress"],
    },
    "reconcile": {"at": os.environ.get("BROKAGE_RECONCILE_AT", "03:30"), "command": ["reconcile", "--json"]},
}

# --- Channels (WebSocket) -------------------------------------------------------------------------

if REDIS_BACKEND == "redis":
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# A WebSocket signs in with a one-use ticket valid this long (notifications/tickets.py).
WS_TICKET_SECONDS = int(os.environ.get("WS_TICKET_SECONDS", "30"))

# --- Auth and API ---------------------------------------------------------------------------------

AUTH_USER_MODEL = "customers.Customer"
LOGIN_URL = "/admin/login/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Not a check: Django tells validators when a password changed, by whatever path (API, admin,
    # `changepassword`); every token issued before then stops working.
    {"NAME": "brokage.authentication.TokensRevokedOnPasswordChange"},
]
if PROFILE == "test":
    # Hashing dominates a test suite that signs in hundreds of times; the algorithm is irrelevant there.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # The token's claims say who is asking; no user lookup per request (brokage/authentication.py).
        "brokage.authentication.PrincipalTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "brokage.parsers.DecimalJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "brokage.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "brokage.schema.BrokageAutoSchema",
    "EXCEPTION_HANDLER": "brokage.api.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Per-tier limits for signed-in users, per-IP for anonymous ones (brokage/ratelimit.py).
    "DEFAULT_THROTTLE_CLASSES": ["brokage.ratelimit.TierRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anonymous": os.environ.get("RATE_LIMIT_ANONYMOUS", "300/min")},
}
# /metrics: open on the development profiles; on prod only to `Authorization: Bearer METRICS_TOKEN`
# or to clients in METRICS_ALLOWED_NETWORKS (CIDRs; loopback by default).
METRICS_PUBLIC = env_bool("METRICS_PUBLIC", not SECURE_PROD)
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
RATE_LIMIT_ENABLED = env_bool("RATE_LIMIT_ENABLED", True)
# Employees (ADMIN, BROKER) are not held to a customer tier's limit.
RATE_LIMIT_STAFF = os.environ.get("RATE_LIMIT_STAFF", "6000/min")
# Who may say who the client is: `X-Forwarded-For` counts only behind these proxies (brokage/clientip.py).
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "")

# Sign-in lockout (django-axes) on /api/auth/token, /admin/login/ and /api-auth/login/: after
# SIGNIN_FAILURE_LIMIT failures for one account, or from one client IP, sign-in is refused (429)
# for SIGNIN_LOCKOUT_MINUTES, and the lockout is recorded (axes' tables and the audit trail).
AUTHENTICATION_BACKENDS = [
    "customers.signin.SignInLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("SIGNIN_LOCKOUT_ENABLED", True)
AXES_FAILURE_LIMIT = int(os.environ.get("SIGNIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("SIGNIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "brokage.clientip.client_ip_address"
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are not worth a row each
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_VERBOSE = False
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=int(os.environ.get("JWT_ACCESS_MINUTES", "30"))),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    # Tokens carry a digest of the password hash: a password change makes every earlier token invalid.
    "CHECK_REVOKE_TOKEN": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Brokage API",
    "DESCRIPTION": "Stock orders paid in TRY, balances reserved by an asynchronous saga.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc from the installed package (drf-spectacular-sidecar): the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Misc -----------------------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if USES_REAL_SERVICES
    else "django.core.mail.backends.locmem.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "2525"))
EMAIL_TIMEOUT = 5
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Brokage <no-reply@brokage.local>")

# --- Notifications and telemetry ------------------------------------------------------------------

# Attempts per e-mail before its channel status is FAILED; the delay doubles after each attempt.
NOTIFICATIONS_EMAIL_MAX_ATTEMPTS = int(os.environ.get("NOTIFICATIONS_EMAIL_MAX_ATTEMPTS", "3"))
NOTIFICATIONS_EMAIL_RETRY_DELAY_SECONDS = float(os.environ.get("NOTIFICATIONS_EMAIL_RETRY_DELAY", "0.2"))
# SMS and push gateways (dotted paths to a `notifications.delivery.MessageProvider`); the default
# records what would be sent in the `outbound_messages` collection.
NOTIFICATIONS_SMS_PROVIDER = os.environ.get("NOTIFICATIONS_SMS_PROVIDER", "notifications.delivery.RecordingProvider")
NOTIFICATIONS_PUSH_PROVIDER = os.environ.get("NOTIFICATIONS_PUSH_PROVIDER", "notifications.delivery.RecordingProvider")
# How long a process keeps a customer's contact (notifications/services.py); 0 reads it for every notification.
NOTIFICATIONS_CONTACT_CACHE_SECONDS = float(os.environ.get("NOTIFICATIONS_CONTACT_CACHE_SECONDS", "5"))

TELEMETRY_ENABLED = env_bool("TELEMETRY_ENABLED", True)
TELEMETRY_PATH_PREFIXES = env_list("TELEMETRY_PATH_PREFIXES", "/api/")
TELEMETRY_BATCH_SIZE = int(os.environ.get("TELEMETRY_BATCH_SIZE", "500"))
TELEMETRY_FLUSH_SECONDS = float(os.environ.get("TELEMETRY_FLUSH_SECONDS", "0.5"))
TELEMETRY_QUEUE_MAX = int(os.environ.get("TELEMETRY_QUEUE_MAX", "20000"))
# The test profile flushes synchronously (`brokage.telemetry.telemetry_flush`) so tests can assert.
TELEMETRY_BACKGROUND = env_bool("TELEMETRY_BACKGROUND", PROFILE != "test")

# Each context has its own `outbox_events` and `processed_events` table in its own database;
# the router keeps them apart, so the shared table name is intended.
SILENCED_SYSTEM_CHECKS = ["models.W035", "models.E030"]

LOGGING = logging_config(level=os.environ.get("LOG_LEVEL", "INFO"))
