"""Reelforge settings.

Everything comes from environment variables. The embedded defaults need nothing installed or
running (SQLite, django-q2's ORM broker, files under `media/`, the built-in provider simulator),
but they are only accepted in development: without `DEBUG=true` a real `SECRET_KEY`,
`ALLOWED_HOSTS` and `KIE_API_KEY` (or an explicit `KIE_USE_SIMULATOR=true`) must be given.

Every variable read here is listed in the README's configuration table; `tests/config/test_settings.py`
fails when one is missing, so read the environment only through the `env_*` helpers below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    # Empty counts as unset, as for the other helpers: `KIE_BASE_URL=` in an env file must not
    # mean an empty URL.
    return os.environ.get(name, "").strip() or default


def env_bool(name: str, default: bool = False) -> bool:
    value = env_str(name)
    if not value:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}.")


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    try:
        return int(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None


def env_float(name: str, default: float) -> float:
    value = env_str(name)
    try:
        return float(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = env_str(name)
    return [item.strip() for item in value.split(",") if item.strip()] if value else default


# --- Core ------------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set unless DEBUG=true (development).")
    SECRET_KEY = "django-insecure-development-only-key"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set unless DEBUG=true (development).")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Reverse proxies in front (nginx, a load balancer) that set X-Forwarded-Proto and append to
# X-Forwarded-For. Only with one there are those headers believed: without a proxy any client
# could claim to be on HTTPS, or pick its own address for the login rate limits.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", env_int("API_NUM_PROXIES", 0))
if TRUSTED_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
if not DEBUG:
    # Production is HTTPS only: plain HTTP is redirected (except the health check, which load
    # balancers ask over plain HTTP), and browsers are told to stay on HTTPS (HSTS).
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz/$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    # Joining browsers' preload list is the domain owner's one-way decision, not a default.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=True)

INSTALLED_APPS = [
    "videos.apps.ReelforgeAdminConfig",  # django.contrib.admin, with the Reelforge site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "django_htmx",
    "videos",
    "billing",
]

MIDDLEWARE = [
    "config.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    # Static files straight after the security headers: no session or database for them.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "videos.portal.seats.portal_context",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Request bodies: small JSON and form posts; image uploads are checked against 10 MB themselves.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- REST API --------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "videos.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "videos.api.schema.ReelforgeAutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("API_THROTTLE_USER", "600/min"),
        "team": env_str("API_THROTTLE_TEAM", "1200/min"),
        "token": env_str("API_THROTTLE_TOKEN", "20/min"),
        "job_read": env_str("API_THROTTLE_JOB_READ", "3000/min"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # 0 proxies trusts only the socket's address, so a client cannot pick its own identity.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
# How long a link from `GET /jobs/{id}/video-url/` works, without a token.
CLIP_LINK_SECONDS = env_int("CLIP_LINK_SECONDS", 3600)
# `GET /jobs/{id}/?wait=N` holds a server thread for up to N s; past this many at once in one
# process, a request answers at once instead.
API_MAX_WAITERS = env_int("API_MAX_WAITERS", 16)
SPECTACULAR_SETTINGS = {
    "TITLE": "Reelforge API",
    "DESCRIPTION": "Create and follow Kling 2.6 video generation jobs, and read what they cost.",
    "VERSION": "1.0.0",
    "TAGS": [
        {"name": "auth", "description": "Tokens: how a script signs its requests."},
        {"name": "teams", "description": "Teams, members, invitations."},
        {"name": "projects", "description": "Projects, their job defaults and budgets."},
        {"name": "prompts", "description": "Saved prompts and their versions."},
        {"name": "jobs", "description": "Generation jobs and their clips."},
        {"name": "money", "description": "Estimates and spend."},
    ],
    # Routes answer with and without a trailing slash; the schema lists the slashed spelling.
    "PREPROCESSING_HOOKS": ["videos.api.schema.documented_endpoints"],
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name per choice set, whichever field uses it.
    "ENUM_NAME_OVERRIDES": {
        "JobStateEnum": "videos.models.JobState",
        "DurationEnum": "videos.models.Duration",
        "AspectRatioEnum": "videos.models.AspectRatio",
    },
}

# --- Portal and sign-in ----------------------------------------------------------------------

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "login"

# Password-reset mail. Development prints it on the console; production sends it over SMTP.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Reelforge <reelforge@localhost>")

# --- Outbound webhooks ----------------------------------------------------------------------

# Seconds a receiver has to answer each delivery.
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 5.0)
# Deliveries go only to public addresses, like image URLs; development and tests may lift that.
WEBHOOKS_ALLOW_PRIVATE_URLS = env_bool("WEBHOOKS_ALLOW_PRIVATE_URLS", default=False)
# Delivered and given-up deliveries (with their attempts) are kept this long, then deleted.
WEBHOOK_HISTORY_DAYS = env_int("WEBHOOK_HISTORY_DAYS", 30)

# --- Admin -----------------------------------------------------------------------------------

# Failed admin sign-ins (and old-password checks) allowed per username and per client address,
# as "<number>/<s|min|hour|day>"; counted in the cache like the API's throttles.
ADMIN_LOGIN_THROTTLE = env_str("ADMIN_LOGIN_THROTTLE", "10/min")

# --- Database --------------------------------------------------------------------------------

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the worker writes; IMMEDIATE transactions take the write
    # lock up front, so two processes wait on the busy timeout instead of failing with
    # "database is locked" when both try to upgrade a read lock. Connections are kept like any
    # other database's: opening one (and its PRAGMAs) for every task and request cost 11.6 ms of
    # CPU a job (bench/orchestration_bench.py, 300 jobs: 60.9 -> 49.3 ms).
    DATABASES["default"]["OPTIONS"] = {
        "timeout": env_int("SQLITE_BUSY_TIMEOUT_SECONDS", 20),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

# --- Cache and task queue --------------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL")

if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    # Shared by every process on the machine, unlike the per-process local-memory cache.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "reelforge_cache",
        }
    }

# django-q2 re-runs a task whose `retry` window passes while it is still running, so
# retry > timeout > the longest task (a result download is bounded by RESULT_DOWNLOAD_TIMEOUT).
Q_TASK_TIMEOUT_SECONDS = env_int("Q_TASK_TIMEOUT_SECONDS", 300)
Q_CLUSTER: dict[str, Any] = {
    "name": "reelforge",
    "workers": env_int("Q_WORKERS", 2),
    "timeout": Q_TASK_TIMEOUT_SECONDS,
    "retry": Q_TASK_TIMEOUT_SECONDS + env_int("Q_RETRY_MARGIN_SECONDS", 60),
    "max_attempts": 3,
    "ack_failures": True,
    "catch_up": False,
    # Successes are not saved: each job's events already say what every task did, and with a
    # positive limit django-q2 reads every kept success under a row lock to prune one, once a
    # task (10.9 ms of CPU a job: bench/orchestration_bench.py, 300 jobs, 71.8 -> 60.9 ms).
    # Failures are always saved.
    "save_limit": -1,
    "label": "Task queue",
    "sync": env_bool("Q_SYNC", default=False),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 0.5

# --- Files -----------------------------------------------------------------------------------

# Static files are served by WhiteNoise from STATIC_ROOT (`collectstatic` fills it): in
# production with hashed, compressed copies that browsers may cache for ever.
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# Stored files have no public URL; `videos.media` serves them to members of their team.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))

AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
if AWS_STORAGE_BUCKET_NAME:
    AWS_S3_ENDPOINT_URL = env_str("AWS_S3_ENDPOINT_URL") or None
    AWS_ACCESS_KEY_ID = env_str("AWS_ACCESS_KEY_ID") or None
    AWS_SECRET_ACCESS_KEY = env_str("AWS_SECRET_ACCESS_KEY") or None
    AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME") or None
    # S3-compatible servers rarely serve virtual-host bucket names; AWS itself accepts both.
    AWS_S3_ADDRESSING_STYLE = env_str("AWS_S3_ADDRESSING_STYLE") or (
        "path" if AWS_S3_ENDPOINT_URL else None
    )
    AWS_DEFAULT_ACL = None
    AWS_QUERYSTRING_AUTH = True
    AWS_QUERYSTRING_EXPIRE = env_int("AWS_QUERYSTRING_EXPIRE", 3600)
    AWS_S3_FILE_OVERWRITE = False
    # A multipart upload holds its parts in memory while they are sent: by default 10 of 8 MiB
    # (a 1 GB clip grew a worker by 128.8 MB in bench/retrieval_bench.py). Four at a time: 62.5 MB.
    from boto3.s3.transfer import TransferConfig

    AWS_S3_TRANSFER_CONFIG = TransferConfig(max_concurrency=4)
    AWS_S3_TRANSFER_CONFIG.max_in_memory_upload_chunks = 4
    STORAGES["default"] = {"BACKEND": "storages.backends.s3.S3Storage"}

# Scripts only from this site (portal.js, htmx, the admin's and Swagger UI's own files), never
# inline code; inline styles are allowed (templates and htmx's indicators use them). Clips,
# posters and images come from this site, or from the S3 store its signed links point to.
_MEDIA_SOURCES = "'self' data: blob:"
if AWS_STORAGE_BUCKET_NAME:
    _store = urlsplit(AWS_S3_ENDPOINT_URL) if AWS_S3_ENDPOINT_URL else None
    # The endpoint, and its subdomains for virtual-host bucket names (bucket.endpoint).
    _MEDIA_SOURCES += (
        f" {_store.scheme}://{_store.netloc} {_store.scheme}://*.{_store.netloc}"
        if _store
        else " https://*.amazonaws.com"
    )
CONTENT_SECURITY_POLICY = env_str(
    "CONTENT_SECURITY_POLICY",
    "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            f"img-src {_MEDIA_SOURCES}",
            f"media-src {_MEDIA_SOURCES}",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    ),
)

# --- Provider (kie.ai Kling 2.6) -------------------------------------------------------------

KIE_API_KEY = env_str("KIE_API_KEY")
# The built-in simulator (`manage.py kie_simulator`) stands in for kie.ai by default only in
# development: in production a missing key is a mistake, and faking the provider would hide it.
# An explicit KIE_USE_SIMULATOR=true wins over a key, which then is the key the simulator takes.
KIE_USE_SIMULATOR = env_bool("KIE_USE_SIMULATOR", default=DEBUG and not KIE_API_KEY)
if not KIE_USE_SIMULATOR and not KIE_API_KEY:
    raise ImproperlyConfigured(
        "KIE_API_KEY must be set to the kie.ai API key, or KIE_USE_SIMULATOR=true to use the "
        "built-in simulator (manage.py kie_simulator) instead."
    )
KIE_SIMULATOR_PORT = env_int("KIE_SIMULATOR_PORT", 8765)
if KIE_USE_SIMULATOR:
    KIE_API_KEY = KIE_API_KEY or "simulator-local-key"
    _simulator_url = f"http://127.0.0.1:{KIE_SIMULATOR_PORT}"
    KIE_BASE_URL = env_str("KIE_BASE_URL", _simulator_url).rstrip("/")
    KIE_UPLOAD_BASE_URL = env_str("KIE_UPLOAD_BASE_URL", _simulator_url).rstrip("/")
else:
    KIE_BASE_URL = env_str("KIE_BASE_URL", "https://api.kie.ai").rstrip("/")
    KIE_UPLOAD_BASE_URL = env_str("KIE_UPLOAD_BASE_URL", "https://kieai.redpandaai.co").rstrip("/")
KIE_CONNECT_TIMEOUT = env_float("KIE_CONNECT_TIMEOUT", 5.0)
# A createTask answer slower than this leaves the job `needs_attention`: the task may exist.
KIE_READ_TIMEOUT = env_float("KIE_READ_TIMEOUT", 30.0)
KIE_WEBHOOK_HMAC_KEY = env_str("KIE_WEBHOOK_HMAC_KEY") or None
# Signed callbacks older or newer than this are refused, so a captured one cannot be replayed.
KIE_WEBHOOK_MAX_SKEW = env_float("KIE_WEBHOOK_MAX_SKEW", 300.0)

# --- Second provider (the official Kling API, for projects whose `provider` is "kling") -------
# Needed only when a project uses it; with the simulator, its Kling routes and keys stand in.
KLING_ACCESS_KEY = env_str("KLING_ACCESS_KEY")
KLING_SECRET_KEY = env_str("KLING_SECRET_KEY")
KLING_MODEL_NAME = env_str("KLING_MODEL_NAME", "kling-v2-6")
if KIE_USE_SIMULATOR:
    KLING_BASE_URL = env_str("KLING_BASE_URL", _simulator_url).rstrip("/")
    KLING_ACCESS_KEY = KLING_ACCESS_KEY or "simulator-kling-access-key"
    KLING_SECRET_KEY = KLING_SECRET_KEY or "simulator-kling-secret-key"
else:
    KLING_BASE_URL = env_str("KLING_BASE_URL", "https://api-singapore.klingai.com").rstrip("/")
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# --- Job pipeline ----------------------------------------------------------------------------


class PipelineSettings(TypedDict):
    """The job pipeline's knobs (`settings.PIPELINE`), set below from the environment."""

    RATE_LIMIT_TASKS: int
    RATE_LIMIT_WINDOW_SECONDS: int
    MAX_IN_FLIGHT: int
    CREDITS_CACHE_SECONDS: int
    CREDITS_RECHECK_SECONDS: int
    CALLBACK_GRACE_SECONDS: int
    POLL_INITIAL_SECONDS: int
    POLL_MAX_SECONDS: int
    DEADLINE_MINUTES: int
    LATE_POLL_SECONDS: int
    RESULT_URL_LIFETIME_HOURS: int
    SUBMIT_RETRY_INITIAL_SECONDS: int
    SUBMIT_RETRY_MAX_SECONDS: int
    RETRY_AFTER_MAX_SECONDS: int
    UPLOAD_MAX_ATTEMPTS: int
    STALE_STEP_SECONDS: int
    SUBMIT_STALE_SECONDS: int
    SWEEP_INTERVAL_MINUTES: int
    SWEEP_SUBMIT_BATCH: int
    RETRIEVAL_DEADLINE_MINUTES: int
    CALLBACK_MAX_BYTES: int
    CALLBACK_DEDUP_SECONDS: int
    RESULT_MAX_BYTES: int
    RESULT_MAX_REDIRECTS: int
    RESULT_ALLOW_PRIVATE_URLS: bool
    DNS_TIMEOUT_SECONDS: float
    RESULT_DOWNLOAD_TIMEOUT_SECONDS: int
    RESULT_CONNECT_TIMEOUT_SECONDS: float
    RESULT_READ_TIMEOUT_SECONDS: float
    CLOCK_SECONDS: float
    STEP_LEASE_SECONDS: int
    RETRIEVAL_RETRY_INITIAL_SECONDS: int
    RETRIEVAL_RETRY_MAX_SECONDS: int


PIPELINE: PipelineSettings = {
    # The provider's per-key limit is about 20 new tasks per 10 s; over it requests are rejected.
    "RATE_LIMIT_TASKS": env_int("KIE_RATE_LIMIT_TASKS", 20),
    "RATE_LIMIT_WINDOW_SECONDS": env_int("KIE_RATE_LIMIT_WINDOW_SECONDS", 10),
    "MAX_IN_FLIGHT": env_int("KIE_MAX_IN_FLIGHT", 100),
    "CREDITS_CACHE_SECONDS": env_int("KIE_CREDITS_CACHE_SECONDS", 30),
    # While submissions are paused for lack of credits: how often the balance is read again.
    "CREDITS_RECHECK_SECONDS": env_int("KIE_CREDITS_RECHECK_SECONDS", 15),
    # Polling is the safety net: it starts once a callback is overdue, then backs off.
    "CALLBACK_GRACE_SECONDS": env_int("JOB_CALLBACK_GRACE_SECONDS", 30),
    "POLL_INITIAL_SECONDS": env_int("JOB_POLL_INITIAL_SECONDS", 3),
    "POLL_MAX_SECONDS": env_int("JOB_POLL_MAX_SECONDS", 60),
    "DEADLINE_MINUTES": env_int("JOB_DEADLINE_MINUTES", 15),
    # After the deadline a job is failed, but the provider may still finish it: it is looked up
    # at this slow pace until its result URL would have expired (about a day, for kie.ai).
    "LATE_POLL_SECONDS": env_int("JOB_LATE_POLL_SECONDS", 600),
    "RESULT_URL_LIFETIME_HOURS": env_int("KIE_RESULT_URL_LIFETIME_HOURS", 24),
    "SUBMIT_RETRY_INITIAL_SECONDS": env_int("JOB_SUBMIT_RETRY_INITIAL_SECONDS", 5),
    "SUBMIT_RETRY_MAX_SECONDS": env_int("JOB_SUBMIT_RETRY_MAX_SECONDS", 300),
    # The provider's Retry-After is followed up to this; anything longer or nonsensical is not.
    "RETRY_AFTER_MAX_SECONDS": env_int("KIE_RETRY_AFTER_MAX_SECONDS", 600),
    # An image upload that keeps failing fails its job after this many tries.
    "UPLOAD_MAX_ATTEMPTS": env_int("JOB_UPLOAD_MAX_ATTEMPTS", 6),
    # A worker that died mid-step leaves its job here; older than this, the sweep recovers it.
    "STALE_STEP_SECONDS": env_int("JOB_STALE_STEP_SECONDS", Q_TASK_TIMEOUT_SECONDS + 60),
    # A createTask is one request, over within its connect and read timeouts: a job `submitting`
    # for longer lost its worker, and the clock has it recovered (kie.ai: a person decides;
    # Kling: looked up by its reference).
    "SUBMIT_STALE_SECONDS": env_int(
        "JOB_SUBMIT_STALE_SECONDS", int(KIE_CONNECT_TIMEOUT + KIE_READ_TIMEOUT) + 30
    ),
    "SWEEP_INTERVAL_MINUTES": env_int("JOB_SWEEP_INTERVAL_MINUTES", 1),
    "SWEEP_SUBMIT_BATCH": env_int("JOB_SWEEP_SUBMIT_BATCH", 200),
    # A result that cannot be stored for this long makes its job need attention.
    "RETRIEVAL_DEADLINE_MINUTES": env_int("JOB_RETRIEVAL_DEADLINE_MINUTES", 60),
    "CALLBACK_MAX_BYTES": env_int("CALLBACK_MAX_BYTES", 256 * 1024),
    # Callbacks for a job are handled one at a time; a replay meanwhile is answered and dropped.
    "CALLBACK_DEDUP_SECONDS": env_int("CALLBACK_DEDUP_SECONDS", 120),
    # A 10 s 1080p clip is tens of MB; anything far larger is not a clip.
    "RESULT_MAX_BYTES": env_int("RESULT_MAX_BYTES", 256 * 1024**2),
    "RESULT_MAX_REDIRECTS": env_int("RESULT_MAX_REDIRECTS", 5),
    # Result URLs must be public addresses like image URLs; the simulator serves from loopback.
    "RESULT_ALLOW_PRIVATE_URLS": env_bool("RESULT_ALLOW_PRIVATE_URLS", default=KIE_USE_SIMULATOR),
    "DNS_TIMEOUT_SECONDS": env_float("DNS_TIMEOUT_SECONDS", 3.0),
    # A download's wall-clock limit; with the socket timeouts it must end within Q_TASK_TIMEOUT.
    "RESULT_DOWNLOAD_TIMEOUT_SECONDS": env_int("RESULT_DOWNLOAD_TIMEOUT_SECONDS", 240),
    # Per socket operation; RESULT_DOWNLOAD_TIMEOUT_SECONDS bounds the whole download.
    "RESULT_CONNECT_TIMEOUT_SECONDS": env_float("RESULT_CONNECT_TIMEOUT_SECONDS", 5.0),
    "RESULT_READ_TIMEOUT_SECONDS": env_float("RESULT_READ_TIMEOUT_SECONDS", 30.0),
    # Each worker process looks this often for work that has come due (a poll, a free rate-limit
    # slot, a retrieval's retry); 0 leaves it to the once-a-minute sweep.
    "CLOCK_SECONDS": env_float("JOB_CLOCK_SECONDS", 0.5),
    # A step handed to a worker (a submission, a download) is its for this long, renewed while a
    # download runs; after that another worker takes it over (its own died or the task was lost).
    "STEP_LEASE_SECONDS": env_int("JOB_STEP_LEASE_SECONDS", 30),
    "RETRIEVAL_RETRY_INITIAL_SECONDS": env_int("JOB_RETRIEVAL_RETRY_INITIAL_SECONDS", 2),
    "RETRIEVAL_RETRY_MAX_SECONDS": env_int("JOB_RETRIEVAL_RETRY_MAX_SECONDS", 60),
}

# --- Logging and monitoring ------------------------------------------------------------------

# `json` writes one JSON object a line (for a log collector); every line carries the request id.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}.")
LOGGING = logging_config(level=env_str("LOG_LEVEL", "INFO"), fmt=LOG_FORMAT)

# The bearer token Prometheus sends to `/metrics/` (`Authorization: Bearer ...`); without one
# set, the endpoint does not exist.
METRICS_TOKEN = env_str("METRICS_TOKEN")
