"""A job's tags, note and star: the service's reading and writing, the job
page's forms, the jobs list's filters and groups, and the API's PATCH. Only
the owner organises a job: bob and staff get the 404 of a missing job."""

import pytest
from django.urls import reverse

from audit.models import Action, AuditEntry
from jobs.models import FineTuneJob
from jobs.services import organise
from jobs.services.lifecycle import cancel_job
from tests.api_errors import field_errors
from tests.builders import make_job, ready_sample

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_models")]

JOBS = "/api/v1/jobs/"


def organised(job, **changes) -> FineTuneJob:
    return organise.organise_job(job, organise.check_organisation(changes))


def problems(**fields) -> dict[str, list[str]]:
    with pytest.raises(organise.OrganisationInvalid) as refused:
        organise.check_organisation(fields)
    return refused.value.as_dict()


@pytest.fixture
def world(alice, bob):
    """Alice's runs on two datasets and two models, and one of bob's."""
    routing = ready_sample(alice)
    sentiment = ready_sample(alice, "sentiment")
    return {
        "routing": routing,
        "sentiment": sentiment,
        "baseline": organised(make_job(alice, routing, name="baseline"), tags="baseline, lr"),
        "higher": organised(make_job(alice, routing, name="higher lr"), tags="lr", starred=True),
        "mood": cancel_job(make_job(alice, sentiment, model="minilm-l6", name="mood")),
        "bobs": organised(make_job(bob, ready_sample(bob), name="bobs"), tags="secret-bob"),
    }


def listed(client, **query) -> list[str]:
    """The names of the jobs the list page shows, in order."""
    response = client.get(reverse("jobs"), query)
    assert response.status_code == 200
    html = response.content.decode()
    jobs = FineTuneJob.objects.all()
    shown = [(html.index(f'id="job-{job.pk}"'), job.name) for job in jobs if
             f'id="job-{job.pk}"' in html]  # fmt: skip
    return [name for _, name in sorted(shown)]


# --- reading ------------------------------------------------------------------------------


def test_tags_are_read_from_commas_with_spaces_tidied_and_each_kept_once():
    read = organise.check_organisation({"tags": " Baseline ,, lr  sweep,baseline, v1.2_b-3 "})
    assert read.tags == ["Baseline", "lr sweep", "v1.2_b-3"]
    assert organise.check_organisation({"tags": ["a", " "]}).tags == ["a"]


def test_more_than_ten_tags_are_refused_with_their_count():
    tags = ", ".join(f"t{n}" for n in range(12))
    assert problems(tags=tags) == {"tags": ["at most 10 tags per job (this gives 12)."]}


def test_a_tag_with_other_characters_is_refused_naming_them():
    assert problems(tags="ok, a#b/c#") == {
        "tags": [
            "“a#b/c#” has “#” and “/”; a tag holds letters, digits, spaces, hyphens (-), "
            "underscores (_) and full stops (.) only."
        ]
    }


def test_a_long_tag_and_a_long_note_are_refused_together():
    assert problems(tags="x" * 41, note="n" * 2001) == {
        "tags": [f"“{'x' * 39}…” is 41 characters long; a tag has at most 40."],
        "note": ["at most 2,000 characters (this has 2,001)."],
    }


def test_other_fields_and_shapes_are_refused():
    assert problems(name="x", tags=3, starred="maybe", note=None) == {
        "name": ["cannot be changed here; a job's tags, note and starred can."],
        "tags": ["must be a list of tags, or one text of tags separated by commas."],
        "note": ["must be text."],
        "starred": ["must be true or false."],
    }


# --- writing ------------------------------------------------------------------------------


def test_organising_writes_its_fields_and_one_audit_entry(alice, routing):
    job = make_job(alice, routing)
    updated_at = job.updated_at
    job = organised(job, tags="b, a", note="First try.\r\nKeep it.", starred=True)
    stored = FineTuneJob.objects.get(pk=job.pk)
    assert (organise.tag_names(stored), stored.note, stored.starred) == (
        ["a", "b"], "First try.\nKeep it.", True,
    )  # fmt: skip
    # The ETA is counted from updated_at: organising a run leaves it.
    assert stored.updated_at == updated_at
    entry = AuditEntry.objects.get(action=Action.UPDATE, target_id=str(job.pk))
    assert entry.detail == {"changed": ["note", "starred", "tags"], "tags": ["b", "a"],
                            "starred": True}  # fmt: skip


def test_sending_what_is_already_there_writes_nothing(alice, routing):
    job = organised(make_job(alice, routing), tags="a, b", starred=True)
    organised(job, tags="b, a", starred=True, note="")
    assert AuditEntry.objects.filter(action=Action.UPDATE, target_id=str(job.pk)).count() == 1


# --- the job page -------------------------------------------------------------------------


def test_the_owner_tags_and_notes_a_job_on_its_page(alice_client, alice, routing):
    job = make_job(alice, routing)
    response = alice_client.post(
        reverse("job-organise", args=[job.pk]), {"tags": "baseline, lr 2e-4", "note": "Try me."}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("job-detail", args=[job.pk])
    page = alice_client.get(response["Location"]).content.decode()
    assert page.count('data-testid="tag-chip"') == 2
    assert f'href="{reverse("jobs")}?tag=lr%202e-4"' in page
    assert '<p class="job-note" data-testid="job-note">Try me.</p>' in page
    assert 'value="baseline, lr 2e-4"' in page


def test_bad_tags_are_answered_with_their_sentence_by_the_field(alice_client, alice, routing):
    job = organised(make_job(alice, routing), tags="kept")
    sent = {"tags": "fine, no/slash", "note": "n" * 2001}
    response = alice_client.post(reverse("job-organise", args=[job.pk]), sent)
    assert response.status_code == 422
    html = response.content.decode()
    assert (
        '<p class="field-error" data-field="tags" id="job-tags-error-1">Tags: “no/slash” has '
        "“/”; a tag holds letters, digits, spaces, hyphens (-), underscores (_) and full stops "
        "(.) only.</p>"
    ) in html
    assert (
        '<p class="field-error" data-field="note" id="job-note-error-1">Note: at most 2,000 '
        "characters (this has 2,001).</p>"
    ) in html
    assert 'value="fine, no/slash"' in html  # what was typed stays, to correct
    assert organise.tag_names(FineTuneJob.objects.get(pk=job.pk)) == ["kept"]


def test_with_htmx_the_organise_part_alone_comes_back(alice_client, alice, routing):
    job = make_job(alice, routing)
    url = reverse("job-organise", args=[job.pk])
    saved = alice_client.post(url, {"tags": "a", "note": ""}, headers={"HX-Request": "true"})
    assert saved.status_code == 200
    html = saved.content.decode()
    assert html.lstrip().startswith('<section class="job-organise" id="job-organise"')
    assert 'data-testid="organise-saved"' in html
    refused = alice_client.post(url, {"tags": "#"}, headers={"HX-Request": "true"})
    assert refused.status_code == 422
    assert refused.content.decode().lstrip().startswith('<section class="job-organise"')


def test_the_star_toggles_and_says_its_state(alice_client, alice, routing):
    job = make_job(alice, routing)
    url = reverse("job-star", args=[job.pk])
    back = f"{reverse('jobs')}?tag=lr"
    pressed = alice_client.post(
        url, {"starred": "true", "next": back}, headers={"HX-Request": "true"}
    )
    html = pressed.content.decode()
    assert f'id="star-{job.pk}"' in html and 'aria-pressed="true"' in html
    assert f'name="next" value="{reverse("jobs")}?tag=lr"' in html
    assert FineTuneJob.objects.get(pk=job.pk).starred
    # Without scripts: back to the page it came from, and never to another site.
    assert alice_client.post(url, {"starred": "false", "next": back})["Location"] == back
    elsewhere = alice_client.post(url, {"starred": "true", "next": "https://evil.example/"})
    assert elsewhere["Location"] == reverse("job-detail", args=[job.pk])
    assert FineTuneJob.objects.get(pk=job.pk).starred


@pytest.mark.parametrize("name", ["job-star", "job-organise"])
def test_bob_and_staff_get_the_404_of_a_missing_job(bob_client, client, olga, alice, routing,
                                                    name):  # fmt: skip
    job = make_job(alice, routing)
    client.force_login(olga)
    for someone in (bob_client, client):
        response = someone.post(reverse(name, args=[job.pk]), {"starred": "true", "tags": "x"})
        assert response.status_code == 404
    stored = FineTuneJob.objects.get(pk=job.pk)
    assert (stored.starred, organise.tag_names(stored)) == (False, [])


def test_staff_see_the_owners_tags_but_no_forms(client, olga, alice, routing):
    job = organised(make_job(alice, routing), tags="mine", starred=True)
    client.force_login(olga)
    page = client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert 'data-testid="tag-chip"' in page and 'class="star-mark"' in page
    assert reverse("job-organise", args=[job.pk]) not in page
    assert reverse("job-star", args=[job.pk]) not in page


# --- the jobs list ------------------------------------------------------------------------


def test_each_filter_lists_exactly_the_matching_jobs(alice_client, world):
    assert listed(alice_client) == ["mood", "higher lr", "baseline"]
    assert listed(alice_client, tag="lr") == ["higher lr", "baseline"]
    assert listed(alice_client, tag="BASELINE") == ["baseline"]
    assert listed(alice_client, base_model="minilm-l6") == ["mood"]
    assert listed(alice_client, dataset=str(world["sentiment"].pk)) == ["mood"]
    assert listed(alice_client, status="cancelled") == ["mood"]
    assert listed(alice_client, starred="1") == ["higher lr"]
    assert listed(alice_client, tag="lr", starred="1", status="created") == ["higher lr"]
    # A tag of bob's finds none of his jobs, and nothing of alice's.
    assert listed(alice_client, tag="secret-bob") == []
    # What cannot be a filter is left out, as when it is not given.
    assert listed(alice_client, status="nonsense", dataset="not-a-uuid") == listed(alice_client)


def test_the_filter_bar_offers_only_the_users_own_tags_models_and_datasets(alice_client, world):
    html = alice_client.get(reverse("jobs")).content.decode()
    bar = html[html.index('id="job-filters"') : html.index("</form>", html.index("job-filters"))]
    assert '<option value="baseline">baseline</option>' in bar
    assert '<option value="lr">lr</option>' in bar
    assert "secret-bob" not in bar
    assert f'<option value="{world["sentiment"].pk}">' in bar
    assert str(world["bobs"].dataset_id) not in bar
    chosen = alice_client.get(reverse("jobs"), {"tag": "lr", "starred": "1"}).content.decode()
    assert '<option value="lr" selected>lr</option>' in chosen
    assert 'name="starred" value="1" checked' in chosen


def test_staff_filter_everyones_jobs_as_their_list_shows_them(client, olga, world):
    client.force_login(olga)
    assert listed(client, tag="secret-bob") == ["bobs"]


def test_grouped_by_dataset_each_dataset_is_a_section_with_its_count(alice_client, world):
    html = alice_client.get(reverse("jobs"), {"group": "dataset"}).content.decode()
    routing, sentiment = world["routing"], world["sentiment"]
    assert html.count('data-testid="job-group"') == 2
    assert (
        f'<h2 id="group-{routing.pk}">{routing.name} <span class="muted group-count" '
        'data-group-count="2">· 2 jobs</span></h2>'
    ) in html
    assert 'data-group-count="1">· 1 job</span>' in html
    # Sections in the datasets' alphabetical order, each holding its own dataset's jobs.
    assert html.index(f'id="group-{sentiment.pk}"') < html.index(f'id="group-{routing.pk}"')
    section = html[html.index(f'id="group-{routing.pk}"') :]
    section = section[: section.index("</section>")]
    assert f'id="job-{world["baseline"].pk}"' in section
    assert f'id="job-{world["mood"].pk}"' not in section
    assert 'data-filter-query="group=dataset"' in html


def test_with_htmx_the_results_alone_come_back_keeping_the_filters(alice_client, world):
    query = {"tag": "lr", "status": "", "dataset": ""}
    response = alice_client.get(reverse("jobs"), query, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="job-results">')
    assert 'id="job-filters"' not in html
    assert 'data-filter-query="tag=lr"' in html
    # The address the browser shows: the filters alone, without the empty fields.
    assert response["HX-Push-Url"] == "/jobs/?tag=lr"


def test_a_new_rows_fetch_answers_nothing_when_the_filters_leave_it_out(alice_client, world):
    url = reverse("job-row", args=[world["mood"].pk])
    assert alice_client.get(url, {"tag": "lr"}).status_code == 204
    shown = alice_client.get(url, {"status": "cancelled"})
    assert shown.content.decode().lstrip().startswith(f'<tr id="job-{world["mood"].pk}"')


def test_each_row_shows_its_tags_and_its_star(alice_client, world):
    html = alice_client.get(reverse("jobs")).content.decode()
    higher = world["higher"]
    row = html[html.index(f'id="job-{higher.pk}"') :]
    row = row[: row.index("</tr>")]
    assert f'id="star-{higher.pk}" class="star-toggle" aria-pressed="true"' in row
    assert f'aria-label="Star {higher.name}"' in row
    assert '<a href="/jobs/?tag=lr" class="tag-chip" data-testid="tag-chip">lr</a>' in row


# --- the API ------------------------------------------------------------------------------


def test_a_job_says_its_tags_note_and_star(alice_api, world):
    body = alice_api.get(f"{JOBS}{world['higher'].pk}/").json()
    assert (body["tags"], body["note"], body["starred"]) == (["lr"], "", True)
    listed_jobs = {job["name"]: job["tags"] for job in alice_api.get(JOBS).json()["results"]}
    assert listed_jobs == {"mood": [], "higher lr": ["lr"], "baseline": ["baseline", "lr"]}


def test_patch_changes_the_fields_it_sends(alice_api, world):
    job = world["baseline"]
    response = alice_api.patch(
        f"{JOBS}{job.pk}/", {"tags": ["ablation", "lr"], "starred": True}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["tags"], response.json()["starred"]) == (["ablation", "lr"], True)
    note = alice_api.patch(f"{JOBS}{job.pk}/", {"note": "Best so far."}, format="json").json()
    assert (note["note"], note["tags"], note["starred"]) == ("Best so far.", ["ablation", "lr"],
                                                             True)  # fmt: skip


def test_patch_answers_400_naming_each_bad_field(alice_api, world):
    job = world["baseline"]
    response = alice_api.patch(
        f"{JOBS}{job.pk}/", {"tags": [f"t{n}" for n in range(11)], "name": "x"}, format="json"
    )
    assert response.status_code == 400
    assert field_errors(response) == {
        "name": ["cannot be changed here; a job's tags, note and starred can."],
        "tags": ["at most 10 tags per job (this gives 11)."],
    }
    one = alice_api.patch(f"{JOBS}{job.pk}/", {"starred": "maybe"}, format="json").json()
    assert one["error"] == {"code": "invalid", "message": "starred: must be true or false.",
                            "field": "starred"}  # fmt: skip
    assert organise.tag_names(FineTuneJob.objects.get(pk=job.pk)) == ["baseline", "lr"]


def test_bob_and_staff_patch_alices_job_as_a_missing_one(bob_api, olga, world):
    from tests.builders import api_client

    for someone in (bob_api, api_client(olga)):
        response = someone.patch(f"{JOBS}{world['baseline'].pk}/", {"starred": True}, format="json")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert not FineTuneJob.objects.get(pk=world["baseline"].pk).starred


def test_patch_refuses_text_no_database_stores_and_quotes_it_safely(alice_api, world):
    body = '{"note": "a\\u0000b", "tags": ["x\\ud800"]}'
    url = f"{JOBS}{world['baseline'].pk}/"
    response = alice_api.patch(url, body, content_type="application/json")
    assert response.status_code == 400
    assert field_errors(response) == {
        "note": ["must be text without NUL characters."],
        "tags": [
            "“x\\ud800” has “\\ud800”; a tag holds letters, digits, spaces, hyphens (-), "
            "underscores (_) and full stops (.) only."
        ],
    }
    surrogate = alice_api.patch(url, '{"note": "\\udfff"}', content_type="application/json")
    assert field_errors(surrogate) == {
        "note": ["holds a lone surrogate escape (such as \\ud800), which is not text."]
    }
