"""The object store's S3 client, and its failures told in sentences.

The contract. `storage()` is django-storages' S3 backend for the current
TAILOR_S3_* settings (made once per distinct settings, so a test that
changes them gets a new one); `client()` is its boto3 client. `call(method,
key, **params)` makes one request and turns any failure into a
`StorageError` whose message is one sentence for a person: the store
unreachable, the bucket missing, the keys refused, no keys at all. A key
that is not there is a `MissingObject`, also a FileNotFoundError, as a
missing local file would be. studio/services/object_store.py is built on it.

The trade-off: few, quick retries (three attempts, a five-second connect
timeout), so that an unreachable store is told in seconds rather than after
boto's default minute, at the price of giving up sooner on a store that
blinks.
"""

from __future__ import annotations

import functools
import os

from django.conf import settings


class StorageError(Exception):
    """The object store could not do what was asked; the message says why."""


class MissingObject(StorageError, FileNotFoundError):
    """No object (and no folder of objects) under the key asked for."""


KEY_REFUSED = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"}
NOT_FOUND = {"NoSuchKey", "404", "NotFound"}


def where() -> str:
    endpoint = settings.TAILOR_S3_ENDPOINT_URL or f"AWS S3 ({settings.TAILOR_S3_REGION})"
    return f"the object store at {endpoint}"


def bucket() -> str:
    return settings.TAILOR_S3_BUCKET


@functools.cache
def _storage_for(config: tuple):
    from botocore.config import Config
    from storages.backends.s3 import S3Storage

    name, endpoint, region, access_key, secret_key, style, expire = config
    return S3Storage(
        bucket_name=name,
        endpoint_url=endpoint or None,
        region_name=region or None,
        access_key=access_key or None,
        secret_key=secret_key or None,
        querystring_auth=True,
        querystring_expire=expire,
        file_overwrite=True,
        default_acl=None,
        # Given a client config, django-storages applies no addressing
        # style of its own.
        client_config=Config(
            s3={"addressing_style": style},
            signature_version="s3v4",
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )


# A forked child (a Celery pool process) makes its own: a client's pooled
# connections must not be shared with the parent.
os.register_at_fork(after_in_child=_storage_for.cache_clear)


def storage():
    """The django-storages S3 backend for the current settings."""
    return _storage_for(
        (
            settings.TAILOR_S3_BUCKET,
            settings.TAILOR_S3_ENDPOINT_URL,
            settings.TAILOR_S3_REGION,
            settings.TAILOR_S3_ACCESS_KEY_ID,
            settings.TAILOR_S3_SECRET_ACCESS_KEY,
            settings.TAILOR_S3_ADDRESSING_STYLE,
            settings.TAILOR_S3_URL_EXPIRE_SECONDS,
        )
    )


def client():
    """The boto3 S3 client this thread uses (django-storages' connection)."""
    return storage().connection.meta.client


def error(exc: BaseException, object_key: str) -> StorageError:
    """The sentence for a failure of boto3 or of the store."""
    import urllib3
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    if isinstance(exc, S3UploadFailedError) and exc.__context__ is not None:
        exc = exc.__context__  # the managed upload's own failure
    place = where()
    if isinstance(exc, NoCredentialsError):
        return StorageError(
            f"No keys were given for {place}: set TAILOR_S3_ACCESS_KEY_ID and "
            "TAILOR_S3_SECRET_ACCESS_KEY."
        )
    if isinstance(exc, (BotoCoreError, urllib3.exceptions.HTTPError)):
        return StorageError(
            f"{place.capitalize()} could not be reached ({exc}): check "
            "TAILOR_S3_ENDPOINT_URL and that the store is running."
        )
    if not isinstance(exc, ClientError):
        return StorageError(f"{place.capitalize()} failed on {object_key}: {exc}.")
    answer = exc.response.get("Error", {})
    code = str(answer.get("Code", ""))
    if code in NOT_FOUND:
        return MissingObject(f"{place.capitalize()} holds no file {object_key}.")
    if code == "NoSuchBucket":
        message = (
            f"The bucket {bucket()!r} does not exist at {place}: create it, or set "
            "TAILOR_S3_BUCKET to one that does."
        )
    elif code in KEY_REFUSED:
        message = (
            f"{place.capitalize()} refused the studio's keys ({code}): check "
            "TAILOR_S3_ACCESS_KEY_ID and TAILOR_S3_SECRET_ACCESS_KEY, and that they may "
            f"read and write the bucket {bucket()!r}."
        )
    else:
        message = (
            f"{place.capitalize()} answered {code or 'an error'} for {object_key}: "
            f"{answer.get('Message', exc)}."
        )
    return StorageError(message)


def failures() -> tuple[type[BaseException], ...]:
    """What boto3 raises when a request fails."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError, S3UploadFailedError)


def call(method: str, object_key: str, *, check_bucket: bool = False, **params):
    """One request to the store; any failure becomes a StorageError.

    `check_bucket`: a HEAD's 404 has no body, so it reads the same for a
    missing bucket; asked, a MissingObject is first told apart from that
    (one more request, made only on a 404).
    """
    try:
        return getattr(client(), method)(Bucket=bucket(), **params)
    except failures() as exc:
        found = error(exc, object_key)
        if check_bucket and isinstance(found, MissingObject):
            try:
                client().head_bucket(Bucket=bucket())
            except failures() as bucket_exc:
                response = getattr(bucket_exc, "response", {})
                if response.get("Error", {}).get("Code") in NOT_FOUND:
                    response["Error"]["Code"] = "NoSuchBucket"
                raise error(bucket_exc, object_key) from exc
        raise found from exc
