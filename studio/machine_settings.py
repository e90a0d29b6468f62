"""The settings of a studio on several machines: where files live (one
shared MEDIA_ROOT, or an S3-compatible store) and which training worker
holds which job (memory classes). Read from the environment like the rest
of `studio.settings`, which takes them from here; every machine of one
studio needs the same values (docs/deployment.md), except
TAILOR_WORKER_MEMORY_GB, which is each worker's own.
"""

from studio.env import EnvError, env_choice, env_int, env_str
from studio.services.capacity import memory_classes

# --- Where files live (studio/services/object_store.py) ----------------------------
# `filesystem`: MEDIA_ROOT is the one copy (one machine, or a shared mount).
# `s3`: an S3-compatible bucket holds every file under its path relative to
# MEDIA_ROOT, and MEDIA_ROOT is each machine's own cache.
TAILOR_STORAGE = env_choice("TAILOR_STORAGE", "filesystem", {"filesystem", "s3"}).lower()
# The bucket, created beforehand; the studio only reads, writes and deletes in it.
TAILOR_S3_BUCKET = env_str("TAILOR_S3_BUCKET")
# Empty for AWS S3; the store's address otherwise (MinIO: http://host:9000).
TAILOR_S3_ENDPOINT_URL = env_str("TAILOR_S3_ENDPOINT_URL")
TAILOR_S3_REGION = env_str("TAILOR_S3_REGION", "us-east-1")
# Empty: boto3's own chain (AWS_ACCESS_KEY_ID..., an instance role).
TAILOR_S3_ACCESS_KEY_ID = env_str("TAILOR_S3_ACCESS_KEY_ID")
TAILOR_S3_SECRET_ACCESS_KEY = env_str("TAILOR_S3_SECRET_ACCESS_KEY")
# `path` for most self-hosted stores (MinIO, Ceph), `virtual` for AWS, `auto` lets boto3 pick.
TAILOR_S3_ADDRESSING_STYLE = env_choice(
    "TAILOR_S3_ADDRESSING_STYLE", "auto", {"auto", "path", "virtual"}
).lower()
# Downloads: `redirect` sends the browser to a presigned URL (the store must
# be reachable from it); `stream` passes the bytes through the web process.
TAILOR_S3_DOWNLOADS = env_choice("TAILOR_S3_DOWNLOADS", "redirect", {"redirect", "stream"}).lower()
# How long a presigned download URL works: long enough for a large merged model.
TAILOR_S3_URL_EXPIRE_SECONDS = env_int("TAILOR_S3_URL_EXPIRE_SECONDS", 3600, minimum=60)
if TAILOR_STORAGE == "s3" and not TAILOR_S3_BUCKET:
    raise EnvError("TAILOR_STORAGE=s3 needs TAILOR_S3_BUCKET, the bucket that holds the files")

# --- Training workers by memory (studio/services/capacity.py) -------------------
# Class boundaries in GiB, e.g. 8,16,24,48,80. A job goes to the smallest class that holds its
# estimated peak memory; a worker takes every class its memory reaches.
# Empty: one class, every training worker takes every job its memory holds.
TAILOR_MEMORY_CLASSES = memory_classes("TAILOR_MEMORY_CLASSES")
# The memory (GiB) a training worker counts as its own; 0: its GPU's, else
# the host's. Set it where workers share a device, or to keep one below it.
TAILOR_WORKER_MEMORY_GB = env_int("TAILOR_WORKER_MEMORY_GB", 0, minimum=0)

# --- Experiment trackers (W&B, MLflow) on training workers ---------------------------
from studio.tracker_settings import *  # noqa: E402, F403
