# syntax=docker/dockerfile:1
#
# One image for every Tailor role. docker-compose.yml picks the command per
# service: the web process (uvicorn), the Celery workers (default, train,
# infer) and Celery beat.
#
#   docker build -t tailor .
#
# Inside the image `pip` reaches the public PyPI index, where the Linux wheel
# of torch==2.13.0 is the CUDA build, so the GPU workers need no extra index.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    DJANGO_SETTINGS_MODULE=studio.settings \
    VAR_DIR=/app/var \
    MEDIA_ROOT=/app/var/media \
    STATIC_ROOT=/app/staticfiles \
    HF_HOME=/app/var/hf-cache

# A C compiler at run time: Triton (pulled in by the CUDA build of torch)
# compiles a small launcher the first time one of its kernels runs, and fails
# in a slim image that has no compiler.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

# uid 1000 so that bind-mounted host folders line up with the usual first user.
RUN useradd --create-home --uid 1000 tailor

WORKDIR /app

# Requirements alone first: a code change must not re-run the
# multi-gigabyte install layer.
COPY requirements/ requirements/
RUN pip install -r requirements/web.txt -r requirements/ml.txt

# The code stays owned by root, read-only to the app user; only /app/var
# (the data volume) is writable.
COPY . .

# The key is a throwaway that exists only for this command; the real one comes
# from the environment at run time. VAR_DIR points elsewhere here so nothing
# the settings create on import (sqlite file, key file) lands in /app/var and
# gets copied into fresh volumes.
RUN SECRET_KEY=collectstatic-build-only-not-secret VAR_DIR=/tmp/build-var \
        python manage.py collectstatic --noinput \
 && rm -rf /tmp/build-var \
 && mkdir -p /app/var/media /app/var/models /app/var/hf-cache \
 && chown -R tailor:tailor /app/var

# Docker seeds an empty named volume from the image's folder, ownership
# included, so the volumes that docker-compose.yml mounts at /app/var and
# /app/var/hf-cache start out writable by this user.

USER tailor

EXPOSE 8000

# No HEALTHCHECK here: it would apply to the workers too, which serve no HTTP.
# The web service's healthcheck (GET /healthz) lives in docker-compose.yml.
# uvicorn believes X-Forwarded-Proto/-For only from TAILOR_FORWARDED_ALLOW_IPS
# (the TLS proxy's address; loopback by default), as `make run` does.
CMD ["sh", "-c", "python manage.py migrate --noinput && python manage.py make_demo_models && exec env TAILOR_DB_POOL=1 uvicorn studio.asgi:application --host 0.0.0.0 --port 8000 --forwarded-allow-ips \"${TAILOR_FORWARDED_ALLOW_IPS:-127.0.0.1,::1}\""]
