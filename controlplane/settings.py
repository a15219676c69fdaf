"""Settings, read from the environment with embedded defaults so a fresh clone runs on one machine."""

import ipaddress
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import TypeVar, overload

import dj_database_url
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


@overload
def env(name: str) -> str | None: ...
@overload
def env(name: str, default: str) -> str: ...
def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


N = TypeVar("N", int, float)


def _env_number(name: str, default: N, kind: type[N], what: str) -> N:
    value = env(name)
    try:
        return default if value is None else kind(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be {what}, got {value!r}") from exc


def env_int(name: str, default: int) -> int:
    return _env_number(name, default, int, "an integer")


def env_float(name: str, default: float) -> float:
    return _env_number(name, default, float, "a number")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in (env(name, default) or "").split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
VAR_DIR = Path(env("CONTROLPLANE_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)
# The exported demo model (serving.demo_model): made by `./dev demo` on first run, baked into the image.
DEMO_MODEL_DIR = Path(env("DEMO_MODEL_DIR", str(VAR_DIR / "demo-model")))

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG else "")
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# --- HTTPS: on by default in production; the local demo (plain http on loopback) turns it off --------
HTTPS = env_bool("HTTPS", not DEBUG)
if HTTPS:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Probes and scrapes come over plain http from inside the cluster: answered, not redirected.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool(
        "SECURE_HSTS_PRELOAD", True
    )  # turn off for a domain not on HTTPS everywhere
if env_bool("TRUST_X_FORWARDED_PROTO", False):  # behind a proxy that terminates TLS and sets the header
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "knox",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "core",  # teams and model ownership, for team-scoped roles
    "registry",
    "serving",
    "monitoring",
    "releases",
    "controlplane",  # the composition root: demo set-up and project commands
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.JsonErrorsMiddleware",  # every error under /api/ and /v1/ is JSON
    "serving.endpoints.ServingFastPathMiddleware",  # model endpoints skip the rest
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "core.middleware.ReportingContextMiddleware",
    "core.middleware.ApplicationErrorMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "controlplane.urls"
WSGI_APPLICATION = "controlplane.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.roles",
                "monitoring.context_processors.alerts",
                "controlplane.context_processors.demo_build",
                "csp.context_processors.nonce",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'controlplane.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock when a transaction starts, so two writers to one model
    # queue up instead of failing half-way with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env_int("SQLITE_TIMEOUT_SECONDS", 10),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests use a file, not shared-cache memory, so concurrent writers meet the same locking as in use.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-controlplane.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # An unreachable server fails a connection, or a query whose packets go unanswered (a network
    # partition, a fail-over), in seconds rather than after TCP's minutes: serving then keeps the routes
    # it has (serving/model_cache.py) instead of holding a request. libpq's own parameters.
    DATABASES["default"]["OPTIONS"] = {
        "connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT_SECONDS", 3),
        "tcp_user_timeout": env_int("DATABASE_TCP_USER_TIMEOUT_SECONDS", 10) * 1000,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        **DATABASES["default"].get("OPTIONS", {}),  # what DATABASE_URL's query string says wins
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # counts failed logins, locks a user+address out
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = True
AXES_CLIENT_IP_CALLABLE = "core.clients.client_ip"  # X-Forwarded-For only through TRUSTED_PROXIES
AXES_LOCKOUT_CALLABLE = "core.views.login_locked"  # the page and Retry-After say how long is left
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # a try during the lock does not extend it
# Addresses or networks of the proxies in front of the site (haproxy, an ingress): only from these is
# X-Forwarded-For believed, for the lock-outs and the logs. Empty: the connection's peer is the client.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "")
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_proxy!r} is not an address or network") from _exc

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "registry:model-list"
LOGOUT_REDIRECT_URL = "login"

# Company sign-in: OpenID Connect's code flow (mozilla-django-oidc, core/oidc.py; docs/deploy.md "Company
# sign-in"), on when OIDC_RP_CLIENT_ID is set. Endpoints left empty come from OIDC_OP_ISSUER's discovery
# document. OIDC_ROLE_MAP (JSON) maps the groups claim's values to roles: "role" for all models, "role@team"
# for one team's models, or a list of those; recomputed at every sign-in, no role → no access.
OIDC_RP_CLIENT_ID = env("OIDC_RP_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = env("OIDC_RP_CLIENT_SECRET", "")
OIDC_OP_ISSUER = env("OIDC_OP_ISSUER", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = env("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = env("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = env("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = env("OIDC_OP_JWKS_ENDPOINT", "")
OIDC_RP_SIGN_ALGO = env("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_IDP_SIGN_KEY = env("OIDC_RP_IDP_SIGN_KEY", "")  # a PEM key instead of the JWKS endpoint
OIDC_RP_SCOPES = env("OIDC_RP_SCOPES", "openid email profile")
OIDC_PROVIDER_NAME = env("OIDC_PROVIDER_NAME", "your company account")
OIDC_GROUPS_CLAIM = env("OIDC_GROUPS_CLAIM", "groups")
try:
    OIDC_ROLE_MAP = json.loads(env("OIDC_ROLE_MAP", "{}"))
except ValueError as exc:
    raise ImproperlyConfigured(f"OIDC_ROLE_MAP is not JSON: {exc}") from exc
OIDC_TIMEOUT = env_float("OIDC_TIMEOUT_SECONDS", 10)
OIDC_VERIFY_SSL = env_bool("OIDC_VERIFY_SSL", True)
OIDC_USE_PKCE = True
OIDC_AUTHENTICATE_CLASS = "core.oidc.SignInStart"
LOGIN_REDIRECT_URL_FAILURE = "/accounts/sign-in-failed/"  # a path: the library does not resolve names
# false: no password sign-in on the site or the admin (createsuperuser and changepassword still work).
LOCAL_ACCOUNTS_ENABLED = env_bool("LOCAL_ACCOUNTS_ENABLED", True)
if OIDC_RP_CLIENT_ID:
    AUTHENTICATION_BACKENDS.append("core.oidc.Backend")
if not LOCAL_ACCOUNTS_ENABLED:
    AUTHENTICATION_BACKENDS.remove("django.contrib.auth.backends.ModelBackend")
    if not OIDC_RP_CLIENT_ID:
        raise ImproperlyConfigured(
            "LOCAL_ACCOUNTS_ENABLED=false needs OIDC_RP_CLIENT_ID: no one could sign in"
        )

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# plotly.js in its basic partial bundle — scatter and bar, the only traces monitoring.charts draws: 1.2 MB
# instead of the full bundle's 5 MB, and no eval (the CSP forbids it) — installed by npm from
# package.json (./dev does it) and served locally: nothing comes from a CDN.
STATICFILES_DIRS = [BASE_DIR / "static", ("plotly", BASE_DIR / "node_modules" / "plotly.js-basic-dist-min")]
STATIC_ROOT = Path(env("STATIC_ROOT", str(VAR_DIR / "staticfiles")))  # the image collects them at build
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # The sample store's images (serving.sample_store): a local folder by default; any Django storage
    # backend (e.g. django-storages' S3) can take its place.
    "samples": {
        "BACKEND": env("SAMPLE_STORE_BACKEND", "django.core.files.storage.FileSystemStorage"),
        "OPTIONS": {"location": env("SAMPLE_STORE_DIR", str(VAR_DIR / "samples"))},
    },
    # Names with their content's hash once collectstatic has run (the image, ./dev demo), which whitenoise
    # serves with far-future immutable cache headers; plain names before (a checkout, the tests).
    "staticfiles": {"BACKEND": "core.staticfiles.HashedStaticFiles"},
}
WHITENOISE_USE_FINDERS = True

# The sample store's caps for a model that turns it on (each model's policy can change them).
SAMPLE_STORE_DEFAULTS = {
    "max_count": env_int("SAMPLE_STORE_MAX_COUNT", 500),
    "max_bytes": env_int("SAMPLE_STORE_MAX_BYTES", 256 * 1024 * 1024),
    "retention_days": env_int("SAMPLE_STORE_RETENTION_DAYS", 14),
}
SAMPLE_STORE_QUEUE = env_int("SAMPLE_STORE_QUEUE", 64)  # inputs waiting to be stored; more are dropped

# --- MLflow -----------------------------------------------------------------------------------
MLFLOW_TRACKING_URI = env("MLFLOW_TRACKING_URI", f"sqlite:///{VAR_DIR / 'mlflow' / 'mlflow.db'}")
MLFLOW_REGISTRY_URI = env("MLFLOW_REGISTRY_URI", MLFLOW_TRACKING_URI)
# Where new experiments keep artifacts when the tracking store is local; a tracking server
# decides for itself, so this is only used for sqlite/file stores.
MLFLOW_ARTIFACT_ROOT = env("MLFLOW_ARTIFACT_ROOT", str(VAR_DIR / "mlflow" / "artifacts"))
MLFLOW_EXPERIMENT_PREFIX = env("MLFLOW_EXPERIMENT_PREFIX", "controlplane")
# The tracking server's web UI (e.g. https://mlflow.example.com): version pages link each run there.
MLFLOW_UI_URL = env("MLFLOW_UI_URL", "").rstrip("/")
# How long a workflow action may hold its model before the claim lapses (a process that died mid-action):
# longer than the slowest MLflow call an action makes, registration's upload included.
WORKFLOW_LEASE_SECONDS = env_int("WORKFLOW_LEASE_SECONDS", 300)

# --- Registration -----------------------------------------------------------------------------
MODEL_UPLOAD_MAX_BYTES = env_int("MODEL_UPLOAD_MAX_BYTES", 256 * 1024 * 1024)
# source_uri may name a local path only inside this folder (none by default: uploads and MLflow URIs only).
MODEL_IMPORT_DIR = env("MODEL_IMPORT_DIR")
# Object-store schemes source_uri may use, read by MLflow with its own credentials (e.g. "s3,gs").
MODEL_IMPORT_OBJECT_STORES = [s.lower() for s in env_list("MODEL_IMPORT_OBJECT_STORES", "")]
# The check of an uploaded or imported model (onnx.checker and one test inference) runs in a child process
# with at most this much address space and wall time (modelspec/bounded_check.py). A model at the upload limit
# needs about 1.5 GB, a 20 MB classifier about 350 MB, the idle checker 190 MB (bench/model_check/results.json).
MODEL_CHECK_MEMORY_MB = env_int("MODEL_CHECK_MEMORY_MB", 2048)
MODEL_CHECK_TIMEOUT_SECONDS = env_float("MODEL_CHECK_TIMEOUT_SECONDS", 60)
# Checks at once per process (each may take MODEL_CHECK_MEMORY_MB); more wait for a slot, then get 503.
MODEL_CHECK_CONCURRENCY = max(1, env_int("MODEL_CHECK_CONCURRENCY", 2))
if MODEL_CHECK_MEMORY_MB < 256 or MODEL_CHECK_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured(
        "MODEL_CHECK_MEMORY_MB must be at least 256 (the checker alone takes about 190 MB) and "
        "MODEL_CHECK_TIMEOUT_SECONDS positive"
    )
FILE_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024

# --- Workflow ---------------------------------------------------------------------------------
CANARY_WEIGHT_MIN = 1
CANARY_WEIGHT_MAX = 50
IDEMPOTENCY_KEY_TTL_HOURS = env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24)

# --- Serving ----------------------------------------------------------------------------------
SERVING_ROUTE_TTL_SECONDS = env_float(
    "SERVING_ROUTE_TTL_SECONDS", 0.5
)  # promotions reach a process within this
SERVING_BATCH_MAX = env_int("SERVING_BATCH_MAX", 2)  # measured best on 2 cores, see bench/README.md
# 0 = greedy: a batch is whatever queued while the previous one ran, so a lone request never waits.
SERVING_BATCH_WAIT_MS = env_float("SERVING_BATCH_WAIT_MS", 0)
# Threads of each loaded version's session for lone requests (0: one per physical core this process may use).
SERVING_INTRA_OP_THREADS = env_int("SERVING_INTRA_OP_THREADS", 0)
# Threads of the session that runs batches while requests queue (0: the same session as above).
SERVING_BATCH_INTRA_OP_THREADS = env_int("SERVING_BATCH_INTRA_OP_THREADS", 1)
# Threads running batches side by side in each process; extra ones join only while a full batch waits.
SERVING_BATCH_WORKERS = env_int("SERVING_BATCH_WORKERS", 1)
SERVING_MAX_LOADED = env_int("SERVING_MAX_LOADED", 6)
# Loading a version (serving/model_cache.py): one load per version in flight on this many threads per
# process; a request waits for it at most SERVING_LOAD_WAIT_SECONDS and at most SERVING_LOAD_WAITERS
# requests wait at once; a failure is remembered, and retried after SERVING_LOAD_RETRY_SECONDS doubling
# up to SERVING_LOAD_RETRY_MAX_SECONDS.
SERVING_LOAD_THREADS = env_int("SERVING_LOAD_THREADS", 2)
SERVING_LOAD_WAIT_SECONDS = env_float("SERVING_LOAD_WAIT_SECONDS", 5)
# At most half the request threads (WEB_THREADS) wait on loads: the rest keep answering /healthz and
# versions that are loaded.
SERVING_LOAD_WAITERS = env_int("SERVING_LOAD_WAITERS", max(1, env_int("WEB_THREADS", 16) // 2))
SERVING_LOAD_RETRY_SECONDS = env_float("SERVING_LOAD_RETRY_SECONDS", 2)
SERVING_LOAD_RETRY_MAX_SECONDS = env_float("SERVING_LOAD_RETRY_MAX_SECONDS", 60)
# /readyz: how long it waits for a version's load in flight and for its probe inference.
SERVING_READINESS_TIMEOUT_SECONDS = env_float("SERVING_READINESS_TIMEOUT_SECONDS", 2)
SERVING_MAX_PIXELS = env_int("SERVING_MAX_PIXELS", 40_000_000)
# JPEGs are decoded (DCT scaling) down to no less than this multiple of the size the model needs: 2.5 keeps
# the full decode's answers; 1 decodes 1080p photos 2.6 times as fast again (bench/README.md).
SERVING_DECODE_MARGIN = max(1.0, env_float("SERVING_DECODE_MARGIN", 2.5))
# An INT8 build calibrates on the reference images and up to this many stored production inputs.
QUANTIZE_STORED_SAMPLES = env_int("QUANTIZE_STORED_SAMPLES", 200)
# A version's source run (params, metrics, datasets) is read from MLflow at most this often per run.
MLFLOW_RUN_CACHE_SECONDS = env_int("MLFLOW_RUN_CACHE_SECONDS", 60)
SERVING_MAX_BODY_BYTES = env_int("SERVING_MAX_BODY_BYTES", 20 * 1024 * 1024)
SERVING_CACHE_ENABLED = env_bool("SERVING_CACHE_ENABLED", True)
SERVING_CACHE_ALIAS = "predictions"
SERVING_CACHE_TTL_SECONDS = env_int("SERVING_CACHE_TTL_SECONDS", 3600)
SERVING_CACHE_RETRY_SECONDS = env_float("SERVING_CACHE_RETRY_SECONDS", 30)
DATA_UPLOAD_MAX_MEMORY_SIZE = SERVING_MAX_BODY_BYTES
REDIS_URL = env("REDIS_URL")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "default"},
    # The API lock-out's counts, shared by every process and node: Redis when configured, else a table in
    # the database (made by migrate; core.cache counts in it atomically).
    "lockout": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "cvcp",
    }
    if REDIS_URL
    else {"BACKEND": "core.cache.DatabaseCache", "LOCATION": "cvcp_cache"},
    # Replicas share prediction answers when Redis is configured; otherwise each process keeps its own.
    "predictions": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "cvcp",
        # A hung Redis must cost a request little: then the cache is skipped (SERVING_CACHE_RETRY_SECONDS).
        "OPTIONS": {
            "socket_timeout": env_float("REDIS_TIMEOUT_SECONDS", 0.25),
            "socket_connect_timeout": env_float("REDIS_TIMEOUT_SECONDS", 0.25),
        },
    }
    if REDIS_URL
    else {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "predictions",
        "OPTIONS": {"MAX_ENTRIES": env_int("SERVING_CACHE_MAX_ENTRIES", 10_000)},
    },
}

# --- Celery -----------------------------------------------------------------------------------
# The embedded default needs no server: kombu's SQLAlchemy transport on a sqlite file under var/.
CELERY_BROKER_URL = env("CELERY_BROKER_URL") or (
    f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}" if DEBUG else None
)
if not CELERY_BROKER_URL:
    raise ImproperlyConfigured("CELERY_BROKER_URL must be set when DEBUG is off (e.g. redis://redis:6379/0)")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a task lost with its worker runs again: tasks are idempotent
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A hung broker must fail a queueing page or API call in seconds (503 queue_unavailable), not hang it.
CELERY_BROKER_CONNECTION_TIMEOUT = env_float("BROKER_TIMEOUT_SECONDS", 3)
# Redis's transport options; given to another transport they break it (kombu's SQLAlchemy transport hands
# them to create_engine, which refuses them and the worker dies at start), so only Redis gets them.
REDIS_BROKER_TRANSPORT_OPTIONS = {
    "socket_timeout": env_float("BROKER_TIMEOUT_SECONDS", 3),
    "socket_connect_timeout": env_float("BROKER_TIMEOUT_SECONDS", 3),
    # A task whose worker died unacknowledged goes back to the queue after this long (Redis), found by a
    # sweep every few seconds (kombu's default sweeps only every ~100 s).
    "visibility_timeout": env_int("BROKER_VISIBILITY_TIMEOUT_SECONDS", 3600),
    "unacked_restore_interval": env_int("BROKER_RESTORE_INTERVAL_SECONDS", 10),
    "unacked_restore_throttle": 1,
}
REDIS_BROKERS = ("redis://", "rediss://", "redis+socket://", "sentinel://")
CELERY_BROKER_TRANSPORT_OPTIONS = (
    REDIS_BROKER_TRANSPORT_OPTIONS if CELERY_BROKER_URL.startswith(REDIS_BROKERS) else {}
)
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 0.5,
}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Monitoring -------------------------------------------------------------------------------
PROMETHEUS_URL = env("PROMETHEUS_URL")  # collect through Prometheus when set
SERVING_METRICS_URLS = env_list("SERVING_METRICS_URLS", "http://127.0.0.1:8000/metrics")  # else scrape these
MONITORING_COLLECT_SECONDS = env_float("MONITORING_COLLECT_SECONDS", 60)
MONITORING_SCRAPE_TIMEOUT_SECONDS = env_float("MONITORING_SCRAPE_TIMEOUT_SECONDS", 5)
MONITORING_CANARY_SECONDS = env_float("MONITORING_CANARY_SECONDS", 60)
# An alert whose condition holds again within this long of resolving is reopened (its trail, acknowledgement
# and assignee kept), not raised anew; a silence lasts at most SILENCE_MAX_DAYS.
ALERT_REOPEN_SECONDS = env_float("ALERT_REOPEN_SECONDS", 3600)
SILENCE_MAX_DAYS = env_int("SILENCE_MAX_DAYS", 30)
# Alert rules' webhooks (monitoring/webhooks.py): a name is resolved when a rule is saved and again at every
# delivery, and refused if any address is loopback, private, link-local, a cloud metadata address… unless
# ALLOW_PRIVATE is on. Delivery is a Celery task posting to the vetted address, retried with back-off
# (BACKOFF doubling from its first wait up to BACKOFF_MAX, full jitter) on no connection, timeouts, 5xx
# and 429, at most MAX_ATTEMPTS times; CA_BUNDLE replaces the system's CAs for https receivers.
ALERT_WEBHOOK_ALLOW_PRIVATE = env_bool("ALERT_WEBHOOK_ALLOW_PRIVATE", False)
ALERT_WEBHOOK_CONNECT_TIMEOUT_SECONDS = env_float("ALERT_WEBHOOK_CONNECT_TIMEOUT_SECONDS", 3)
ALERT_WEBHOOK_READ_TIMEOUT_SECONDS = env_float("ALERT_WEBHOOK_READ_TIMEOUT_SECONDS", 5)
ALERT_WEBHOOK_MAX_ATTEMPTS = env_int("ALERT_WEBHOOK_MAX_ATTEMPTS", 5)
ALERT_WEBHOOK_BACKOFF_SECONDS = env_float("ALERT_WEBHOOK_BACKOFF_SECONDS", 2)
ALERT_WEBHOOK_BACKOFF_MAX_SECONDS = env_float("ALERT_WEBHOOK_BACKOFF_MAX_SECONDS", 120)
ALERT_WEBHOOK_CA_BUNDLE = env("ALERT_WEBHOOK_CA_BUNDLE", "")
# The true label of a prediction is taken this long after it was made (POST /v1/predictions/{id}/feedback).
FEEDBACK_MAX_DELAY_DAYS = env_int("FEEDBACK_MAX_DELAY_DAYS", 30)
# Evidence: example inputs (thumbnails from the opt-in sample store) kept with each alert, and for how long.
EVIDENCE_PER_ALERT = env_int("EVIDENCE_PER_ALERT", 6)
EVIDENCE_RETENTION_DAYS = env_int("EVIDENCE_RETENTION_DAYS", 30)
CELERY_BEAT_SCHEDULE = {
    "collect-metrics": {"task": "monitoring.tasks.collect_metrics", "schedule": MONITORING_COLLECT_SECONDS},
    "analyze-canaries": {"task": "releases.tasks.analyze_canaries", "schedule": MONITORING_CANARY_SECONDS},
    "ensure-baselines": {"task": "monitoring.tasks.ensure_baselines", "schedule": MONITORING_COLLECT_SECONDS},
    "evaluate-alerts": {"task": "monitoring.tasks.evaluate_alerts", "schedule": MONITORING_COLLECT_SECONDS},
    "enforce-sample-limits": {"task": "monitoring.tasks.enforce_sample_limits", "schedule": 3600},
}

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "core.api.Schema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# API tokens: hashed (django-rest-knox), expiring; a client sending bad ones is locked out for a while.
API_TOKEN_TTL_DAYS = env_int("API_TOKEN_TTL_DAYS", 90)
REST_KNOX = {"TOKEN_TTL": timedelta(days=API_TOKEN_TTL_DAYS), "AUTO_REFRESH": False}
API_AUTH_FAILURE_LIMIT = env_int("API_AUTH_FAILURE_LIMIT", 10)
API_AUTH_LOCKOUT_SECONDS = env_int("API_AUTH_LOCKOUT_SECONDS", 300)

# --- Content-Security-Policy (django-csp): scripts only from us; plotly draws with inline styles -----
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

SPECTACULAR_SETTINGS = {
    "TITLE": "CV control plane API",
    "DESCRIPTION": "Model registry, promotion workflow and rollback for computer-vision models.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "StageEnum": "registry.choices.Stage",
        "FeedbackStatusEnum": "monitoring.choices.FeedbackStatus",
        "FeedbackItemStatusEnum": "monitoring.choices.FeedbackItemStatus",
        "AlertEventActionEnum": "monitoring.choices.AlertEventAction",  # a trail event's and a webhook attempt's
        "AlertmanagerStatusEnum": ["firing", "resolved"],
        "ConfigKindEnum": "registry.choices.ConfigKind",
        "ConfigActionEnum": "registry.choices.ConfigAction",
        "QueueStatusEnum": "monitoring.choices.QueueStatus",  # a stored input's state in the review queue
    },
    "COMPONENT_SPLIT_REQUEST": True,
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 0, "maximum": 999_999_999}},
    # The predict endpoint (a plain Django view, outside DRF) with both tasks' answers: serving/api/schema.py.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "serving.api.schema.predict_endpoint",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"alembic": {"level": "WARNING"}, "mlflow": {"level": "WARNING"}},
}

# --- Pre-flight replay (releases.preflight) ----------------------------------------------------
PREFLIGHT_SAMPLES = env_int("PREFLIGHT_SAMPLES", 50)  # stored production inputs a replay runs on
PREFLIGHT_MAX_SAMPLES = env_int("PREFLIGHT_MAX_SAMPLES", 1000)
PREFLIGHT_MIN_AGREEMENT = env_float("PREFLIGHT_MIN_AGREEMENT", 0.9)  # top-1 agreement the gate needs

# What a production request needs (registry.evidence gates, provided by releases): a passing canary
# analysis and a passing pre-flight. An admin may override either with a written reason (recorded).
PROMOTION_GATES = env_list("PROMOTION_GATES", "canary_analysis,preflight")
SHADOW_QUEUE = env_int("SHADOW_QUEUE", 32)  # mirrored requests waiting for the shadow; more are dropped

# --- Error reporting (core.reporting), optional ----------------------------------------------------
# With SENTRY_DSN set, unhandled errors of the dashboard, the API, serving and Celery tasks go to Sentry
# with their route, model, version and stage; personal data only with SENTRY_SEND_PII=true.
SENTRY_DSN = env("SENTRY_DSN")
if SENTRY_DSN:
    from core.reporting import reporting_init

    reporting_init(
        dsn=SENTRY_DSN,
        environment=env("SENTRY_ENVIRONMENT", "production"),
        release=env("SENTRY_RELEASE") or None,
        send_pii=env_bool("SENTRY_SEND_PII", False),
        traces_sample_rate=env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0),
    )
