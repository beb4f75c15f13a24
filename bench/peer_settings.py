"""Settings of the Django reference for bench/load.sh --peer: the peer's own
settings (PEER_DIR/django_ref/refproj/settings.py), on PostgreSQL when
PEER_PG_URL is set (postgres://USER@HOST:PORT/DB), as Tessera is measured."""

import os
from urllib.parse import urlparse

from refproj.settings import *  # noqa: F401,F403

if os.environ.get("PEER_PG_URL"):
    u = urlparse(os.environ["PEER_PG_URL"])
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": u.path.lstrip("/"),
            "USER": u.username or "postgres",
            "PASSWORD": u.password or "",
            "HOST": u.hostname or "127.0.0.1",
            "PORT": u.port or 5432,
            "CONN_MAX_AGE": int(os.environ.get("REF_CONN_MAX_AGE", "0")),
        }
    }
