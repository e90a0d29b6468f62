"""Whatever a file holds, validate() answers with a report (hypothesis).

The engine's one entry point takes arbitrary bytes, or records of odd shapes
written as JSONL, JSON, CSV, TSV or Parquet, and must end in one of two
states: ok, with canonical records within the limits, or not ok, with errors
that say why and nothing left behind. It never raises (its contract: only
I/O failures and the progress callback's own exceptions), and what it keeps
in memory and writes is bounded by the limits, not by what a file claims.

Inputs are kept to a few kilobytes and the limits small, so every cap is
reached by some examples; the counts keep the whole module near 15 s.
"""

import csv
import io
import json
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasets_app.engine import FORMAT_FIELDS, FORMATS, DatasetLimits, read_page, validate
from datasets_app.engine.formats import EXTENSIONS, ROLES

# Small enough for a few-kilobyte file to pass each of them.
LIMITS = DatasetLimits(max_rows=40, max_row_bytes=600, max_records_bytes=8_000, max_expansion=6)
# What validate() may allocate in Python for a file of a few kilobytes under
# LIMITS: rows are read one at a time, so this is far above the real need
# and far below what a file that expands without bound would take.
MAX_PEAK_BYTES = 24 * 1024**2
ONE_RUN = settings(
    max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

# --- strategies: values and records of every shape a format reads, and odd ones ----------

FIELD_NAMES = sorted({name for fields in FORMAT_FIELDS.values() for name in fields})
KEYS = st.sampled_from([*FIELD_NAMES, "role", "content", "from", "value", "id", ""]) | st.text(
    max_size=6
)
WORDS = st.sampled_from(["system", "user", "assistant", "human", "gpt", "", " ", "\n"])
TEXT = WORDS | st.text(max_size=30)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)
TURN = st.fixed_dictionaries({"role": WORDS | JSON_VALUES, "content": TEXT | JSON_VALUES})
SHAREGPT_TURN = st.fixed_dictionaries({"from": WORDS, "value": TEXT | JSON_VALUES})
RECORDS = st.one_of(
    st.builds(lambda turns: {"messages": turns}, st.lists(TURN, max_size=5)),
    st.builds(lambda turns: {"conversations": turns}, st.lists(SHAREGPT_TURN, max_size=5)),
    st.fixed_dictionaries({"prompt": TEXT, "completion": TEXT | JSON_VALUES}),
    st.fixed_dictionaries(
        {"instruction": TEXT, "output": TEXT}, optional={"input": TEXT | JSON_VALUES}
    ),
    st.fixed_dictionaries({"text": TEXT | JSON_VALUES}, optional={"label": TEXT | SCALARS}),
    st.dictionaries(KEYS, JSON_VALUES, max_size=5),
    JSON_VALUES,
)
OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "format": st.sampled_from(FORMATS) | st.text(max_size=8),
        "column_mapping": st.dictionaries(
            st.sampled_from(FIELD_NAMES), st.sampled_from(FIELD_NAMES) | st.text(max_size=6),
            max_size=2,
        ),
    },
)  # fmt: skip


@st.composite
def jsonl_files(draw) -> bytes:
    lines = []
    for record in draw(st.lists(RECORDS, max_size=12)):
        line = draw(
            st.sampled_from(["json", "ascii", "blank", "garbage"]) if lines else st.just("json")
        )
        if line == "garbage":
            lines.append(draw(st.text(max_size=20)))
        elif line == "blank":
            lines.append(draw(st.sampled_from(["", "  ", "\t"])))
        else:
            lines.append(json.dumps(record, ensure_ascii=line == "ascii"))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines) + draw(st.sampled_from(["", newline]))
    return draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + text.encode("utf-8", "surrogatepass")


@st.composite
def json_files(draw) -> bytes:
    document = draw(st.lists(RECORDS, max_size=12) | JSON_VALUES)
    text = json.dumps(document, indent=draw(st.sampled_from([None, 1])))
    cut = draw(st.integers(0, 3))  # a file that ends early now and then
    return text[: len(text) - cut].encode("utf-8", "surrogatepass")


CELLS = TEXT | JSON_VALUES.map(json.dumps)


@st.composite
def delimited_files(draw, delimiter: str) -> bytes:
    header = draw(st.lists(KEYS, min_size=1, max_size=4))
    width = st.integers(max(0, len(header) - 1), len(header) + 1)  # ragged rows too
    rows = draw(st.lists(width.flatmap(lambda n: st.lists(CELLS, min_size=n, max_size=n)),
                         max_size=12))  # fmt: skip
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    text = buffer.getvalue()
    if draw(st.booleans()):  # a quote opened and never closed, somewhere
        at = draw(st.integers(0, len(text)))
        text = text[:at] + '"' + text[at:]
    return text.encode("utf-8", "surrogatepass")


# Arrow types a Parquet column may have, each with the Python values it takes.
_TURNS = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
PARQUET_COLUMNS = [
    (pa.string(), TEXT),
    (pa.large_string(), TEXT),
    (pa.binary(), st.binary(max_size=20)),
    (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    (pa.float64(), st.floats()),
    (pa.bool_(), st.booleans()),
    (pa.null(), st.none()),
    (pa.list_(pa.string()), st.lists(TEXT, max_size=3)),
    (_TURNS, st.lists(st.fixed_dictionaries({"role": WORDS, "content": TEXT}), max_size=4)),
    (pa.struct([("role", pa.string()), ("n", pa.int32())]),
     st.fixed_dictionaries({"role": WORDS, "n": st.integers(-(2**31), 2**31 - 1)})),
    (pa.map_(pa.string(), pa.int64()), st.lists(st.tuples(TEXT, st.integers(0, 9)), max_size=2)),
    # Stored as integers: any of them, even those no Python date or time can hold.
    (pa.timestamp("ms"), st.integers(-(2**63), 2**63 - 1)),
    (pa.timestamp("ns", tz="UTC"), st.integers(-(2**63), 2**63 - 1)),
    (pa.date32(), st.integers(-(2**31), 2**31 - 1)),
    (pa.date64(), st.integers(-(2**63), 2**63 - 1)),
    (pa.time64("us"), st.integers(0, 86_400 * 10**6 - 1)),
    (pa.duration("s"), st.integers(-(2**63), 2**63 - 1)),
    (pa.decimal128(12, 3), st.decimals(min_value=-999_999, max_value=999_999, places=3)),
]  # fmt: skip
_STORED_AS_INTEGERS = {pa.timestamp("ms"), pa.timestamp("ns", tz="UTC"), pa.date32(), pa.date64(),
                       pa.duration("s")}  # fmt: skip


def _arrow_array(kind, values):
    if kind in _STORED_AS_INTEGERS:
        storage = pa.int32() if kind == pa.date32() else pa.int64()
        return pa.array(values, storage).view(kind)
    return pa.array(values, kind)


@st.composite
def parquet_files(draw) -> bytes:
    # A format's columns, so that rows reach its normaliser, and now and then another.
    names = list(draw(st.sampled_from(list(FORMAT_FIELDS.values()))))
    names += draw(st.lists(KEYS.filter(lambda name: name not in names), max_size=1))
    rows = draw(st.integers(0, 12))
    columns = {}
    for name in names:
        kind, values = draw(st.sampled_from(PARQUET_COLUMNS))
        column = draw(st.lists(st.none() | values, min_size=rows, max_size=rows))
        columns[name] = _arrow_array(kind, column)
    buffer = io.BytesIO()
    pq.write_table(
        pa.table(columns),
        buffer,
        row_group_size=draw(st.sampled_from([1, 5, 1024])),
        use_dictionary=draw(st.booleans()),
        compression=draw(st.sampled_from(["none", "snappy", "zstd"])),
    )
    return buffer.getvalue()


FILES = st.one_of(
    st.tuples(st.just("data.jsonl"), jsonl_files()),
    st.tuples(st.just("data.json"), json_files()),
    st.tuples(st.just("data.csv"), delimited_files(",")),
    st.tuples(st.just("data.tsv"), delimited_files("\t")),
    st.tuples(st.just("data.parquet"), parquet_files()),
)
ANY_BYTES = st.tuples(
    st.sampled_from([*EXTENSIONS, ".txt", ""]).map(lambda extension: f"data{extension}"),
    st.binary(max_size=2_000) | st.binary(max_size=200).map(lambda tail: b"PAR1" + tail + b"PAR1"),
)


# --- the property ---------------------------------------------------------------------------


def check_report(tmp_path, name: str, content: bytes, options: dict) -> None:
    """validate() of `content` ends in a report that keeps its promises."""
    source = tmp_path / name
    source.write_bytes(content)
    out = tmp_path / "out" / "records.jsonl"
    out.parent.mkdir(exist_ok=True)
    out.unlink(missing_ok=True)
    tracemalloc.start()
    try:
        report = validate(source, filename=name, out_path=out, limits=LIMITS, **options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < MAX_PEAK_BYTES, f"validate() allocated {peak:,} bytes for {len(content):,}"
    # Stored as JSON (PostgreSQL's jsonb takes no NaN): every part of the report must be.
    json.dumps(report.as_dict(), allow_nan=False)
    assert report.error_count >= len(report.errors)
    if report.ok:
        assert (report.error_count, report.errors) == (0, [])
        assert 1 <= report.num_rows <= LIMITS.max_rows
        written = out.stat().st_size
        assert written <= LIMITS.records_bytes_for(len(content))[0]
        lines = out.read_bytes().splitlines()
        assert len(lines) == report.num_rows
        for line in lines:
            assert_canonical(json.loads(line), report.task)
        assert read_page(out, offset=0, limit=report.num_rows) == [json.loads(x) for x in lines]
    else:
        assert report.errors, "a report that is not ok says why"
        for error in report.errors:
            assert error.message.strip() and error.code
        assert len(report.errors) <= 100
        assert not out.exists() and not out.with_suffix(".idx").exists()
        assert not list(out.parent.iterdir()), "a refused file leaves nothing behind"


def assert_canonical(record: dict, task: str) -> None:
    if task == "classification":
        assert record.keys() == {"text", "label"}
        assert isinstance(record["text"], str) and record["text"].strip()
        assert isinstance(record["label"], str) and record["label"].strip()
        return
    assert task == "generation" and record.keys() == {"messages"}
    messages = record["messages"]
    assert messages and messages[-1]["role"] == "assistant"
    for message in messages:
        assert message.keys() == {"role", "content"}
        assert message["role"] in ROLES and isinstance(message["content"], str)


@ONE_RUN
@given(file=FILES, options=OPTIONS)
def test_a_file_of_odd_records_ends_in_a_report_within_the_limits(tmp_path_factory, file, options):
    name, content = file
    check_report(tmp_path_factory.mktemp("engine"), name, content, options)


@settings(ONE_RUN, max_examples=150)
@given(file=ANY_BYTES)
def test_any_bytes_under_any_name_end_in_a_report(tmp_path_factory, file):
    name, content = file
    check_report(tmp_path_factory.mktemp("engine"), name, content, {})


@settings(ONE_RUN, max_examples=30)
@given(
    value=st.text(min_size=1, max_size=20),
    rows=st.integers(1, 50_000),
    repeat=st.integers(1, 20_000),
    name=st.sampled_from(["text", "prompt"]),
)
def test_a_parquet_file_that_expands_is_refused_before_it_is_read(
    tmp_path_factory, value, rows, repeat, name
):
    """Dictionary and run-length encoding let a few hundred bytes stand for
    megabytes; the report comes from the footer, within the same memory."""
    column = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), [value * repeat])
    buffer = io.BytesIO()
    pq.write_table(pa.table({name: column, "label": pa.array(["a"] * rows)}), buffer)
    check_report(tmp_path_factory.mktemp("engine"), "data.parquet", buffer.getvalue(), {})


def test_a_parquet_date_past_what_python_holds_is_reported_with_its_row_and_column(tmp_path):
    """Found by the first property: pyarrow raised OverflowError out of validate()."""
    days = pa.array([0, 2**31 - 1], pa.int32()).view(pa.date32())
    source = tmp_path / "dates.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "label": days}), source)
    report = validate(source, filename="dates.parquet", out_path=tmp_path / "out.jsonl")
    assert [error.as_dict() for error in report.errors] == [
        {
            "line": None,
            "field": None,
            "code": "bad_parquet",
            "message": "not a readable Parquet file "
            "(row 2, column `label`: a date32[day] value out of range)",
        }
    ]
