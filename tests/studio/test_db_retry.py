"""`retry_database` against a real PostgreSQL whose server ends the
connection under a write (`pg_terminate_backend`, the same "terminating
connection due to administrator command" a restart sends)."""

import threading

import psycopg
import pytest
from django.contrib.auth.models import User
from django.db import ProgrammingError, connection, transaction

from studio.services.db_retry import retry_database

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgresql]


def end_this_threads_connection() -> None:
    """The server ends the connection this thread holds, as a restart would."""
    User.objects.exists()  # open it
    pid = connection.connection.info.backend_pid
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
        user=settings["USER"], dbname="postgres", autocommit=True,
    ) as admin:  # fmt: skip
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_a_plain_query_is_retried_on_a_new_connection():
    end_this_threads_connection()
    assert retry_database(lambda: User.objects.filter(username="ann").count(), seconds=10) == 0


def test_a_write_in_a_transaction_is_retried_although_leaving_it_opened_a_fresh_connection():
    # Leaving atomic() after the error rolls back, fails, drops the connection
    # and opens a fresh one: the retry must judge the error, not the connection.
    end_this_threads_connection()
    tries = []

    def write():
        tries.append(1)
        with transaction.atomic():
            User.objects.filter(username="ann").update(first_name="A")
            User.objects.update_or_create(username="ann", defaults={"first_name": "Ann"})

    retry_database(write, seconds=10)
    assert len(tries) == 2
    assert User.objects.get(username="ann").first_name == "Ann"


def test_the_event_writers_thread_retries_too():
    outcome = {}

    def run():
        try:
            end_this_threads_connection()
            retry_database(lambda: User.objects.create(username="bob"), seconds=10)
            outcome["stored"] = True
        except Exception as exc:  # reported below, with its text
            outcome["error"] = repr(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert outcome == {"stored": True}
    assert User.objects.filter(username="bob").exists()


def test_a_mistake_in_the_query_is_not_retried():
    tries = []

    def mistaken():
        tries.append(1)
        with connection.cursor() as cursor:
            cursor.execute("SELECT no_such_column FROM auth_user")

    with pytest.raises(ProgrammingError):
        retry_database(mistaken, seconds=10)
    assert len(tries) == 1
