"""Whatever a job file or a job body holds, reading it ends in a configuration or
a ConfigError (hypothesis).

The entry points are those an upload and the API call: `load_job_file` for a
file's bytes, `job_document` for a create or estimate body (the document
shape, the flat one, `hyperparameters` as an object or as a form's JSON
text), then `check_start_job` for the user's datasets and the catalog, and
the estimate endpoint itself. None of them may raise anything else, no
error sentence may quote an untrusted value at length, and a file of a few
kilobytes may not cost more than a few megabytes to read (YAML aliases
would). What Tailor writes (a job's config.yaml) it reads back as it was.
"""

import dataclasses
import io
import json
import tracemalloc

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs import config as cfg
from jobs.create_body import FLAT_FIELDS, job_document
from jobs.services.lifecycle import check_start_job
from studio.models import ApiToken
from tests.api_errors import field_errors
from tests.builders import api_client, ready_sample

# An error names a field (clipped) and says what is wrong with it in a sentence.
LONGEST_FIELD = 80
LONGEST_MESSAGE = 400
# What reading a file of at most a few kilobytes may allocate (aliases would
# make it gigabytes; nesting is capped at cfg.MAX_FILE_DEPTH).
MAX_PEAK_BYTES = 8 * 1024**2
FILES = settings(max_examples=120, suppress_health_check=[HealthCheck.too_slow])
WITH_DATABASE = settings(
    max_examples=120,
    # The user and dataset are read, never changed, by every example.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# --- strategies -----------------------------------------------------------------------------

FIELD_NAMES = {section: [f.name for f in dataclasses.fields(kind)]
               for section, kind in cfg.SECTIONS.items()}  # fmt: skip
ALL_FIELDS = sorted({name for names in FIELD_NAMES.values() for name in names})
WORDS = st.sampled_from(
    [*cfg.METHODS, *cfg.PRESETS, *cfg.SCHEDULERS, *cfg.LOSS_ON, "all-linear", "tailor-tiny",
     "true", "off", "1e-4", "-0", "nan", "inf", "0x10", "1_000", "٣", "2024-02-30"]
)  # fmt: skip
# Text no database stores as it is: a NUL (PostgreSQL) and a lone surrogate (any driver).
UNSTORABLE = st.sampled_from(["tailor\x00tiny", "\x00", "tailor\ud800tiny", "\udfff"])
TEXT = WORDS | st.text(max_size=12) | st.text(min_size=100, max_size=300) | UNSTORABLE
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**30, max_value=10**300)  # past a float, and int() limits
    | st.floats()
    | TEXT
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
SECTIONS = st.fixed_dictionaries(
    {},
    optional={
        section: st.dictionaries(st.sampled_from(names) | TEXT, VALUES, max_size=4) | VALUES
        for section, names in FIELD_NAMES.items()
    },
)
DOCUMENTS = st.builds(
    lambda sections, extra: {**sections, **extra},
    SECTIONS,
    st.dictionaries(
        st.sampled_from(["tailor_config", "name", "preset"]) | TEXT, VALUES, max_size=3
    ),
)


# Around cfg.MAX_FILE_DEPTH and Python's recursion limit, and far past both.
DEPTHS = st.sampled_from([1, 9, 10, 11, 999, 1_000, 5_000, 50_000])


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@st.composite
def job_files(draw) -> bytes:
    """YAML a user might upload: a dump of a document, then perhaps damaged by
    what a job file never has (aliases, tags, deep nesting, huge numbers)."""
    text = yaml.safe_dump(draw(DOCUMENTS), allow_unicode=draw(st.booleans()))
    extras = [
        "anchor: &a [x, x, x]\nalias: *a\n",
        "base: &b {rank: 8}\nlora:\n  <<: *b\n",
        f"deep: {_nested(draw(DEPTHS))}\n",
        "training:\n  seed: " + "7" * draw(st.integers(1, 6000)) + "\n",
        "training:\n  epochs: .nan\n",
        "name: !!binary aGVsbG8=\n",
        "name: !!set {a, b}\n",
        "name: !!python/object:os.system [ls]\n",
        "name: 2001-12-14t21:59:43.10-05:00\n",
        "? [a, b]\n: c\n",
        "data: {dataset: ",
        "\t- :\n",
    ]
    for extra in draw(st.lists(st.sampled_from(extras), max_size=2)):
        at = draw(st.sampled_from([0, len(text)]))
        text = text[:at] + extra + text[at:]
    raw = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):  # a damaged byte or two
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(raw)))
            raw = raw[:at] + draw(st.binary(min_size=1, max_size=2)) + raw[at:]
    return raw


EXTRAS = st.fixed_dictionaries(
    {},
    optional={
        "start": VALUES,
        "hyperparameters": st.dictionaries(st.sampled_from(ALL_FIELDS) | TEXT, VALUES, max_size=3)
        | VALUES.map(json.dumps)
        | DEPTHS.map(_nested)
        | VALUES,
    },
)


@st.composite
def near_valid_bodies(draw) -> dict:
    """A body that would check, in the flat or the document shape, with a field
    or two changed: most examples then reach the model, preset and ranges."""
    if draw(st.booleans()):
        body = {"dataset": "{dataset}", "base_model": "tailor-tiny"}
    else:
        body = {"data": {"dataset": "{dataset}"}, "model": {"base_model": "tailor-tiny"}}
    for _ in range(draw(st.integers(0, 2))):
        section = draw(st.sampled_from(list(FIELD_NAMES)))
        name = draw(st.sampled_from(FIELD_NAMES[section]))
        body[section] = {**(body.get(section) or {}), name: draw(VALUES | UNSTORABLE)}
    return {**body, **draw(EXTRAS)}


BODIES = near_valid_bodies() | st.builds(
    lambda document, flat, extra: {**document, **flat, **extra},
    DOCUMENTS,
    st.dictionaries(st.sampled_from(list(FLAT_FIELDS)), VALUES | st.just("{dataset}"), max_size=3),
    EXTRAS,
)


# --- what every answer must be --------------------------------------------------------------


def assert_clear(error: cfg.ConfigError) -> None:
    assert error.errors, "a ConfigError names at least one field"
    for problem in error.errors:
        # (A key may be empty: `"": 1` is named as it was written.)
        assert len(problem.field) <= LONGEST_FIELD, problem.field[:200]
        assert 0 < len(problem.message) <= LONGEST_MESSAGE, problem.message[:200]


def read_file(raw: bytes):
    """load_job_file then read_document, as an upload is read: a JobConfig or a ConfigError."""
    try:
        return cfg.read_document(cfg.load_job_file(raw))
    except cfg.ConfigError as error:
        assert_clear(error)
        return error


@FILES
@given(raw=job_files() | st.binary(max_size=500))
def test_any_job_file_reads_as_a_configuration_or_a_clear_error_in_bounded_memory(raw):
    tracemalloc.start()
    try:
        result = read_file(raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(result, cfg.JobConfig | cfg.ConfigError)
    assert peak < MAX_PEAK_BYTES, f"{peak:,} bytes to read {len(raw):,}"


@settings(FILES, max_examples=150)
@given(document=DOCUMENTS)
def test_a_configuration_read_from_any_document_is_written_and_read_back_the_same(document):
    try:
        config = cfg.read_document(document)
    except cfg.ConfigError as error:
        assert_clear(error)
        return
    written = yaml.safe_dump(config.to_document(), sort_keys=False, allow_unicode=True)
    assert cfg.read_document(cfg.load_job_file(written.encode())) == config


# --- bodies, against the user's datasets and the catalog --------------------------------------


@pytest.fixture
def alices_dataset(alice, demo_models):
    return ready_sample(alice)


def with_dataset(body, dataset):
    """`body` with "{dataset}" placeholders replaced by the ready dataset's id, so
    that some bodies get past the dataset to the model, the preset and the ranges."""
    if isinstance(body, dict):
        return {key: with_dataset(value, dataset) for key, value in body.items()}
    return str(dataset.pk) if body == "{dataset}" else body


@pytest.mark.django_db
@WITH_DATABASE
@given(body=BODIES)
def test_any_job_body_is_checked_into_a_draft_or_a_clear_error(alice, alices_dataset, body):
    try:
        document, start = job_document(with_dataset(body, alices_dataset))
        draft = check_start_job(alice, document)
    except cfg.ConfigError as error:
        assert_clear(error)
        return
    assert isinstance(start, bool)
    # A draft is a job that can run: its document reads back to itself and checks.
    assert cfg.read_document(draft.document) == draft.config
    assert check_start_job(alice, draft.document).config == draft.config


@pytest.fixture
def alices_unlimited_api(alice):
    client = api_client(alice)
    # Every example is a request: no minute's window may refuse one.
    ApiToken.objects.filter(user=alice).update(rate_limit_per_minute=0)
    return client


@pytest.mark.django_db
@settings(WITH_DATABASE, max_examples=60)
@given(body=BODIES, raw=job_files() | st.none())
def test_the_estimate_endpoint_answers_any_body_with_200_or_a_short_400(
    alices_unlimited_api, alices_dataset, body, raw
):
    body = with_dataset(body, alices_dataset)
    if raw is None:
        # Python's own JSON, NaN and Infinity included, as a script could send it.
        response = alices_unlimited_api.post(
            "/api/v1/jobs/estimate/", json.dumps(body), content_type="application/json"
        )
    else:
        # A form sends one text per field: what a form can carry of the body, and the file.
        form = {key: value for key, value in body.items() if isinstance(value, str)}
        # UTF-8, which no lone surrogate is: a real form cannot carry one.
        form = {
            key: value
            for key, value in form.items()
            if (key + value).encode(errors="replace").decode() == key + value
        }
        upload = io.BytesIO(raw)
        upload.name = "job.yaml"
        response = alices_unlimited_api.post(
            "/api/v1/jobs/estimate/", {**form, "config_file": upload}, format="multipart"
        )
    assert response.status_code in (200, 400), response.content[:500]
    if response.status_code == 400:
        error = response.json()["error"]
        assert error["code"] in ("invalid", "malformed_body")
        for problem in error.get("details") or [error]:
            assert len(problem.get("field", "")) <= LONGEST_FIELD
            assert len(problem["message"]) <= LONGEST_FIELD + LONGEST_MESSAGE


# --- what the properties found ----------------------------------------------------------------


@pytest.mark.django_db
def test_form_hyperparameters_nested_past_pythons_json_are_a_400_not_a_500(alices_unlimited_api):
    response = alices_unlimited_api.post(
        "/api/v1/jobs/estimate/", {"hyperparameters": _nested(5_000)}, format="multipart"
    )
    assert response.status_code == 400
    assert field_errors(response) == {"hyperparameters": ["is not valid JSON."]}


def test_an_unknown_hyperparameter_is_named_clipped():
    with pytest.raises(cfg.ConfigError) as error:
        job_document({"hyperparameters": {"x" * 100_000: 1}})
    assert error.value.as_dict() == {
        "hyperparameters." + "x" * 39 + "…": "is not a training or lora field."
    }


@pytest.mark.django_db
def test_text_no_database_stores_is_refused_by_name_not_by_the_database(
    alices_unlimited_api, alices_dataset
):
    """A NUL character failed the lookup of such a model (or the insert of such a
    name) with a 500 on PostgreSQL; a lone surrogate, on every database."""
    body = {
        "data": {"dataset": str(alices_dataset.pk)},
        "model": {"base_model": "tailor\x00tiny"},
        "lora": {"target_modules": ["q_proj\ud800"]},
        "name": "routing\ud800",
        "preset": "quick\x00",
        "start": False,
    }
    response = alices_unlimited_api.post(
        "/api/v1/jobs/", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400
    assert field_errors(response) == {
        "model.base_model": ["must be text without NUL characters."],
        "lora.target_modules": ["must be a list of module names."],
        "name": ["holds a lone surrogate escape (such as \\ud800), which is not text."],
        "preset": ["must be text without NUL characters."],
    }


@pytest.mark.django_db
def test_a_key_with_a_lone_surrogate_is_named_escaped_not_a_500(alices_unlimited_api):
    """The error named the key as it came, and the answer could not be encoded."""
    response = alices_unlimited_api.post(
        "/api/v1/jobs/estimate/",
        '{"training": {"\\ud800": 1}, "\\udfff": {}}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert field_errors(response) == {
        "training.\\ud800": ["is not a known field."],
        "\\udfff": ["is not a configuration section."],
    }
