"""Settings for the test suite: the production settings with test-only defaults.

Anything set in the environment (DATABASE_URL, REDIS_URL, AWS_*) still wins, which is how the
same suite runs against PostgreSQL, Redis and S3-compatible storage.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-suite-only-not-a-secret")
os.environ.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
os.environ.setdefault("Q_SYNC", "true")
# Tests never talk to kie.ai; fixtures point the settings at their own simulator.
os.environ.setdefault("KIE_USE_SIMULATOR", "true")
# The simulator and the tests' file servers listen on loopback; redirects are still checked.
os.environ.setdefault("RESULT_ALLOW_PRIVATE_URLS", "true")
# The tests' webhook receivers listen on loopback too.
os.environ.setdefault("WEBHOOKS_ALLOW_PRIVATE_URLS", "true")

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The suite runs with DEBUG off but without `collectstatic`: plain names, from the apps' folders.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Tests speak plain HTTP to the test client and live server, as a proxy's backend would.
SECURE_SSL_REDIRECT = False

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    import tempfile
    from pathlib import Path

    # A file, not shared-cache memory: the live server thread, the test and a worker process
    # all use the test database at once, which in-memory SQLite answers with "table is locked".
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(Path(tempfile.gettempdir()) / f"reelforge-test-{os.getpid()}.sqlite3")
    }
else:
    # The suite's data is thrown away: a commit need not wait for the disk. Every transactional
    # test's flush, live-server request and worker step commits, so this is most of the wait.
    DATABASES["default"].setdefault("OPTIONS", {})  # noqa: F405
    DATABASES["default"]["OPTIONS"]["options"] = "-c synchronous_commit=off"  # noqa: F405
