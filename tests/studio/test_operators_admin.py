"""The operators' admin (issue 16, "Safe admin"): the Operators group and
`make_operator`; every state change an action makes goes through its service
and reports, per object, what happened; records that are history are read
only; deactivating a user stops their work.

An operator here is a staff user who is not a superuser, made by
`manage.py make_operator`: what they may do is exactly what the group grants.
"""

import io
import re

import pytest
from django.contrib.admin.sites import site as admin_site
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from datasets_app.models import Dataset
from jobs.models import FineTuneJob, JobEvent, JobStatus, MetricPoint
from jobs.services import ledger
from jobs.services.lifecycle import cancel_flag_key, flags_client
from serving.models import Evaluation, Generation, Vote
from studio.models import ApiToken
from studio.services.operators import OPERATORS_GROUP
from studio.services.tokens import create_token
from tests.builders import finished_job, make_job, ready_sample
from tests.processes import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_models")]

JOBS = reverse("admin:jobs_finetunejob_changelist")
USERS = reverse("admin:auth_user_changelist")


@pytest.fixture
def opal(django_user_model):
    """An operator as the README makes one: a user, then `make_operator`."""
    user = django_user_model.objects.create_user("opal", "opal@example.com", PASSWORD)
    call_command("make_operator", "opal", stdout=io.StringIO())
    user.refresh_from_db()
    return user


@pytest.fixture
def opal_client(opal):
    client = Client()
    client.force_login(opal)
    return client


def running_job(owner):
    job = make_job(owner, ready_sample(owner))
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    run = ledger.claim(job.pk, "train@admin-tests")
    ledger.record_start(job.pk, run.attempt, total_steps=75, resumed_from_step=0)
    return FineTuneJob.objects.get(pk=job.pk)


def queued_job(owner):
    job = make_job(owner, ready_sample(owner))
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    return FineTuneJob.objects.get(pk=job.pk)


def act(client, url: str, action: str, objects, *, confirm: bool):
    body = {"action": action, "_selected_action": [str(o.pk) for o in objects]}
    if confirm:
        body["confirmed"] = "yes"
    else:
        body["index"] = "0"
    return client.post(url, body, follow=confirm)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- the group, and making an operator -------------------------------------------------------


def permissions_of(group) -> set[str]:
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in group.permissions.select_related("content_type")
    }


def test_the_operators_group_may_view_everything_in_the_admin_and_change_only_what_actions_need():
    group = Group.objects.get(name=OPERATORS_GROUP)
    granted = permissions_of(group)
    viewable = {f"{m._meta.app_label}.view_{m._meta.model_name}" for m in admin_site._registry}
    assert viewable <= granted, (
        "Operators cannot see these models of the admin: grant the group what it needs in a "
        f"migration of the model's app (studio/operator_permissions.py): {sorted(viewable - granted)}"
    )
    # Beyond viewing, what this studio's own actions need (other apps' grants are theirs).
    ours = {"auth", "axes", "studio", "datasets", "jobs", "serving"}
    assert {p for p in granted - viewable if p.split(".")[0] in ours} == {
        "jobs.view_jobevent",  # the job page's event inline
        "jobs.change_finetunejob", "jobs.delete_finetunejob",
        "datasets.delete_dataset",
        "studio.change_apitoken", "studio.delete_apitoken",
        "jobs.add_catalogmodel", "jobs.change_catalogmodel",
        "axes.delete_accessattempt",
        "auth.deactivate_user",
    }  # fmt: skip
    # No user or group management: an operator cannot make themselves a superuser.
    managing = {f"auth.{a}_{m}" for a in ("add", "change", "delete") for m in ("user", "group")}
    assert not managing & granted


def test_make_operator_makes_a_staff_member_of_the_operators_group(django_user_model):
    user = django_user_model.objects.create_user("opal", "opal@example.com", PASSWORD)
    out = io.StringIO()
    call_command("make_operator", "opal", stdout=out)
    assert out.getvalue() == (
        "opal is an operator: they log in at /admin/ with their own password.\n"
    )
    user.refresh_from_db()
    assert user.is_staff and not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == [OPERATORS_GROUP]
    again = io.StringIO()
    call_command("make_operator", "opal", stdout=again)
    assert again.getvalue() == "opal is an operator already.\n"


def test_make_operator_names_an_unknown_user():
    with pytest.raises(CommandError) as refused:
        call_command("make_operator", "nobody")
    assert str(refused.value) == (
        "No user named 'nobody': create them first (Admin → Users, as a superuser), "
        "then run this again."
    )


def test_an_operator_sees_every_model_in_the_admin_but_cannot_manage_users(opal_client, alice):
    index = opal_client.get(reverse("admin:index"))
    assert index.status_code == 200
    html = index.content.decode()
    assert "have permission to view or edit anything" not in html
    for name in ("Fine tune jobs", "Datasets", "Api tokens", "Generations", "Votes",
                 "Evaluations", "Metric points", "Users"):  # fmt: skip
        assert name in html, name
    assert opal_client.get(JOBS).status_code == 200
    change = reverse("admin:auth_user_change", args=[alice.pk])
    response = opal_client.post(change, {"username": "alice", "is_superuser": "on"})
    assert response.status_code == 403
    assert opal_client.get(reverse("admin:auth_group_add")).status_code == 403
    alice.refresh_from_db()
    assert not alice.is_superuser


# --- jobs ---------------------------------------------------------------------------------------


def test_cancel_states_what_it_will_do_then_cancels_through_the_lifecycle(
    opal_client, alice, django_capture_on_commit_callbacks
):
    running, queued = running_job(alice), queued_job(alice)
    done = finished_job(alice, ready_sample(alice), name="done")

    page = act(opal_client, JOBS, "cancel_jobs", [running, queued, done], confirm=False)
    assert page.status_code == 200
    text = page.content.decode()
    assert "stops at its next step, keeping its last checkpoint" in text
    assert "cancelled at once: it has not started." in text
    assert "has finished (succeeded); left as it is." in text
    assert FineTuneJob.objects.get(pk=running.pk).status == JobStatus.RUNNING

    with django_capture_on_commit_callbacks(execute=True):
        response = act(opal_client, JOBS, "cancel_jobs", [running, queued, done], confirm=True)
    assert set(messages_of(response)) == {
        f"Job “{running.name}” of alice is cancelling: it stops at its next step.",
        f"Job “{queued.name}” of alice was cancelled.",
        "Job “done” of alice was not cancelled: The job has already finished (succeeded).",
    }
    statuses = dict(FineTuneJob.objects.values_list("pk", "status"))
    assert statuses[running.pk] == JobStatus.CANCELLING
    assert statuses[queued.pk] == JobStatus.CANCELLED
    assert statuses[done.pk] == JobStatus.SUCCEEDED
    assert JobEvent.objects.filter(job=running, to_status="cancelling").exists()
    assert flags_client().get(cancel_flag_key(running.pk)) == b"1"


def test_retry_queues_a_new_job_of_its_owner(opal_client, opal, alice):
    done = finished_job(alice, ready_sample(alice), name="done")
    response = act(opal_client, JOBS, "retry_jobs", [done], confirm=True)
    retry = FineTuneJob.objects.get(retry_of=done)
    assert (retry.owner, retry.status, retry.name) == (alice, JobStatus.QUEUED, "done")
    assert messages_of(response) == [
        f"Job “done” of alice was retried as a new job, queued ({retry.pk})."
    ]


def test_retry_refuses_a_job_of_a_deactivated_user(opal_client, alice):
    done = finished_job(alice, ready_sample(alice), name="done")
    alice.is_active = False
    alice.save()
    response = act(opal_client, JOBS, "retry_jobs", [done], confirm=True)
    assert messages_of(response) == [
        "Job “done” of alice was not retried: its owner is deactivated, and the new job would "
        "be theirs."
    ]
    assert not FineTuneJob.objects.filter(retry_of=done).exists()


def test_delete_removes_a_finished_job_with_its_files_and_refuses_a_running_one(
    opal_client, alice, django_capture_on_commit_callbacks
):
    running = running_job(alice)
    done = finished_job(alice, ready_sample(alice), name="done")
    (done.folder / "attempt-1").mkdir(parents=True)
    (done.folder / "attempt-1" / "adapter.zip").write_bytes(b"x" * 2048)
    page = act(opal_client, JOBS, "delete_jobs", [running, done], confirm=False).content.decode()
    assert "The job is running; cancel it before deleting it. Left as it is." in page
    assert "its files" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = act(opal_client, JOBS, "delete_jobs", [running, done], confirm=True)
    said = messages_of(response)
    assert f"Job “{running.name}” of alice was not deleted: The job is running; cancel it " \
        "before deleting it." in said  # fmt: skip
    assert any(re.fullmatch(r"Job “done” of alice was deleted with its files \(.+\)\.", m)
               for m in said), said  # fmt: skip
    assert not FineTuneJob.objects.filter(pk=done.pk).exists()
    assert not done.folder.exists()
    assert FineTuneJob.objects.get(pk=running.pk).status == JobStatus.RUNNING
    assert running.folder.exists()


def test_the_change_forms_delete_refuses_a_running_job_with_a_message(opal_client, alice):
    running = running_job(alice)
    url = reverse("admin:jobs_finetunejob_delete", args=[running.pk])
    response = opal_client.post(url, {"post": "yes"}, follow=True)
    assert messages_of(response) == [
        f"Job “{running.name}” of alice was not deleted: The job is running; cancel it before "
        "deleting it."
    ]
    assert FineTuneJob.objects.filter(pk=running.pk).exists()


def test_the_change_forms_delete_removes_a_finished_jobs_files(
    opal_client, alice, django_capture_on_commit_callbacks
):
    done = finished_job(alice, ready_sample(alice), name="done")
    done.folder.mkdir(parents=True, exist_ok=True)
    url = reverse("admin:jobs_finetunejob_delete", args=[done.pk])
    with django_capture_on_commit_callbacks(execute=True):
        assert opal_client.post(url, {"post": "yes"}).status_code == 302
    assert not FineTuneJob.objects.filter(pk=done.pk).exists()
    assert not done.folder.exists()


def test_no_bulk_delete_passes_by_the_services(opal_client):
    for model in ("jobs_finetunejob", "datasets_dataset", "studio_apitoken"):
        html = opal_client.get(reverse(f"admin:{model}_changelist")).content.decode()
        assert 'value="delete_selected"' not in html, model


# --- datasets -------------------------------------------------------------------------------


def test_deleting_a_dataset_hides_it_and_removes_its_files_but_keeps_the_row(
    opal_client, alice, django_capture_on_commit_callbacks
):
    used = ready_sample(alice)
    make_job(alice, used)
    spare = ready_sample(alice, "sentiment")
    url = reverse("admin:datasets_dataset_changelist")
    page = act(opal_client, url, "delete_datasets", [used], confirm=False).content.decode()
    assert "The job that used it keeps its own copy of the data." in page

    with django_capture_on_commit_callbacks(execute=True):
        response = act(opal_client, url, "delete_datasets", [used], confirm=True)
        # The change form's Delete: the same service, though a job names the dataset.
        opal_client.post(reverse("admin:datasets_dataset_delete", args=[spare.pk]), {"post": "yes"})
    assert messages_of(response) == [
        f"Dataset “{used.name}” of alice was deleted: its owner no longer sees it, and its "
        "files are removed."
    ]
    for dataset in (used, spare):
        row = Dataset.objects.get(pk=dataset.pk)
        assert row.deleted_at is not None
        assert not dataset.folder.exists()
    assert not Dataset.objects.for_user(alice).exists()


# --- tokens ---------------------------------------------------------------------------------


def test_revoke_refuses_the_token_from_its_next_request(opal_client, alice):
    new = create_token(alice, "pipeline")
    url = reverse("admin:studio_apitoken_changelist")
    page = act(opal_client, url, "revoke_tokens", [new.token], confirm=False).content.decode()
    assert "never used; every request carrying it is refused from now on." in page
    response = act(opal_client, url, "revoke_tokens", [new.token], confirm=True)
    assert messages_of(response) == [
        f"Token “pipeline” ({new.token.prefix}…) of alice was revoked."
    ]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {new.secret}")
    assert api.get("/api/v1/me/").status_code == 401
    assert opal_client.get(reverse("admin:studio_apitoken_add")).status_code == 403


# --- records: read only, filtered, searched, fast -----------------------------------------------


def some_records(owner, count: int) -> FineTuneJob:
    job = finished_job(owner, ready_sample(owner), name=f"records {count}")
    generation = None
    for i in range(count):
        MetricPoint.objects.create(job=job, attempt=1, step=i + 1, train_loss=1.0)
        generation = Generation.objects.create(
            owner=owner, source="playground", base_model_id="tailor-tiny", task="causal_lm",
            panes=[{"model": "tailor-tiny", "label": "A", "job": None}], text=f"hello {i}",
        )  # fmt: skip
        Vote.objects.create(generation=generation, owner=owner, model_a=f"a{i}", model_b="b",
                            winner="a")  # fmt: skip
        Evaluation.objects.create(job=job, trigger="manual", sample_size=10)
    return job


RECORDS = ("jobs_metricpoint", "serving_generation", "serving_vote", "serving_evaluation",
           "jobs_checkpoint", "jobs_finetunejob", "datasets_dataset", "studio_apitoken")  # fmt: skip


@pytest.mark.parametrize("model", RECORDS)
def test_a_list_page_makes_as_many_queries_for_many_rows_as_for_few(opal_client, alice, model):
    url = reverse(f"admin:{model}_changelist")
    some_records(alice, 2)
    create_token(alice, "one")
    with CaptureQueriesContext(connection) as few:
        assert opal_client.get(url).status_code == 200
    some_records(alice, 12)
    create_token(alice, "two")
    with CaptureQueriesContext(connection) as many:
        assert opal_client.get(url).status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


@pytest.mark.parametrize(
    ("model", "query"),
    [("jobs_metricpoint", "?kind__exact=train&q=alice"),
     ("serving_generation", "?status__exact=queued&source__exact=playground&q=alice"),
     ("serving_vote", "?winner__exact=a&q=alice"),
     ("serving_evaluation", "?status__exact=queued&trigger__exact=manual&q=alice")],
)  # fmt: skip
def test_records_are_read_only_with_filters_and_search(opal_client, alice, bob, model, query):
    some_records(alice, 2)
    some_records(bob, 1)
    listed = opal_client.get(reverse(f"admin:{model}_changelist") + query)
    assert listed.status_code == 200
    assert listed.context["cl"].result_count == 2
    row = listed.context["cl"].result_list[0]
    change = reverse(f"admin:{model}_change", args=[row.pk])
    assert opal_client.get(change).status_code == 200  # seen
    assert opal_client.post(change, {}).status_code == 403
    assert opal_client.get(reverse(f"admin:{model}_add")).status_code == 403
    assert opal_client.get(reverse(f"admin:{model}_delete", args=[row.pk])).status_code == 403


# --- deactivating a user --------------------------------------------------------------------------


def test_deactivating_a_user_lists_then_cancels_their_jobs_and_revokes_their_tokens(
    opal_client, alice, django_capture_on_commit_callbacks
):
    running, queued = running_job(alice), queued_job(alice)
    done = finished_job(alice, ready_sample(alice), name="done")
    token = create_token(alice, "nightly")
    page = act(opal_client, USERS, "deactivate_users", [alice], confirm=False).content.decode()
    assert "1 queued or running job" not in page
    assert "2 queued or running jobs cancelled and 1 token revoked" in page
    assert f"Job “{running.name}” (running): cancelled, stopping at its next step" in page
    assert f"Job “{queued.name}” (queued): cancelled" in page
    assert "“done”" not in page
    assert f"API token “nightly” ({token.token.prefix}…, never used): revoked" in page
    alice.refresh_from_db()
    assert alice.is_active  # nothing happened yet

    with django_capture_on_commit_callbacks(execute=True):
        response = act(opal_client, USERS, "deactivate_users", [alice], confirm=True)
    assert messages_of(response) == [
        "User alice was deactivated: 2 jobs cancelled, 1 token revoked."
    ]
    alice.refresh_from_db()
    assert not alice.is_active
    statuses = dict(FineTuneJob.objects.values_list("pk", "status"))
    assert (statuses[running.pk], statuses[queued.pk], statuses[done.pk]) == (
        JobStatus.CANCELLING, JobStatus.CANCELLED, JobStatus.SUCCEEDED,
    )  # fmt: skip
    assert not ApiToken.objects.filter(user=alice).exists()
    assert Client(HTTP_AUTHORIZATION=f"Bearer {token.secret}").get("/api/v1/me/").status_code == 401


def test_an_operator_deactivates_neither_themselves_nor_a_superuser(
    opal_client, opal, django_user_model
):
    root = django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    page = act(opal_client, USERS, "deactivate_users", [opal, root], confirm=False)
    text = page.content.decode()
    assert "You cannot deactivate yourself. Left as they are." in text
    assert "Only a superuser may deactivate a superuser. Left as they are." in text
    assert 'name="confirmed"' not in text  # nothing to confirm
    response = act(opal_client, USERS, "deactivate_users", [opal, root], confirm=True)
    assert set(messages_of(response)) == {
        "User opal was not deactivated: You cannot deactivate yourself.",
        "User root was not deactivated: Only a superuser may deactivate a superuser.",
    }
    assert django_user_model.objects.filter(is_active=False).count() == 0


def test_staff_without_the_operators_group_are_offered_no_deactivation(olga, alice):
    client = Client()
    client.force_login(olga)
    assert client.get(USERS).status_code == 403
    response = act(client, USERS, "deactivate_users", [alice], confirm=True)
    assert response.status_code == 403
    alice.refresh_from_db()
    assert alice.is_active


def test_unticking_active_on_the_user_form_stops_their_tokens_at_once(
    client, alice, django_user_model
):
    root = django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    client.force_login(root)
    queued_job(alice)
    token = create_token(alice, "nightly")
    url = reverse("admin:auth_user_change", args=[alice.pk])
    form = {
        "username": "alice", "email": "alice@example.com", "first_name": "", "last_name": "",
        "date_joined_0": timezone.now().strftime("%Y-%m-%d"), "date_joined_1": "00:00:00",
        "initial-date_joined_0": "", "initial-date_joined_1": "",
    }  # fmt: skip
    response = client.post(url, form, follow=True)
    assert response.status_code == 200, response.content.decode()[:2000]
    alice.refresh_from_db()
    assert not alice.is_active
    assert not ApiToken.objects.filter(pk=token.token.pk).exists()
    assert Client(HTTP_AUTHORIZATION=f"Bearer {token.secret}").get("/api/v1/me/").status_code == 401
    assert messages_of(response)[0] == (
        "User alice is inactive: 1 API token revoked. Their work goes on (1 queued or running job): "
        "“Deactivate and cancel their work” in the users list cancels it."
    )
