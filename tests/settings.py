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

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    import tempfile
    from pathlib import Path

    # A file, not shared-cache memory: the live server thread, the test and a worker process
    # all use the test database at once, which in-memory SQLite answers with "table is locked".
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(Path(tempfile.gettempdir()) / f"reelforge-test-{os.getpid()}.sqlite3")
    }
