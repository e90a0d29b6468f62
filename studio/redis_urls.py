"""One Redis, several logical databases: broker, channel layer and flags.

Keeping them apart means a `FLUSHDB` on one (or a key scan) never touches the
others, and `INFO keyspace` shows at a glance what each part holds.
"""

from urllib.parse import urlsplit, urlunsplit

BROKER_DB = 0
CHANNEL_LAYER_DB = 1
FLAGS_DB = 2
RESULTS_DB = 3


def with_db(url: str, db: int) -> str:
    """Return `url` pointing at database number `db` (replacing any given)."""
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss"}:
        raise ValueError(f"REDIS_URL must start with redis:// or rediss://, got {url!r}")
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))
