"""Warnings and statistics: what the report says about the valid rows."""

import json
import random

import pytest

from datasets_app.engine import duplicates, validate
from datasets_app.engine.duplicates import DuplicateFinder
from datasets_app.engine.stats import bin_width, histogram


def run(tmp_path, rows, name="data.jsonl"):
    source = tmp_path / name
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return validate(source, filename=name, out_path=tmp_path / "out" / "records.jsonl")


def chat(*turns):
    return {"messages": [{"role": role, "content": content} for role, content in turns]}


def distinct_chats(count):
    return [chat(("user", f"Question {i}?"), ("assistant", f"Answer {i}.")) for i in range(count)]


def warning(report, code):
    (found,) = [warning for warning in report.warnings if warning.code == code]
    return found.as_dict()


def test_a_healthy_file_has_no_warnings(tmp_path):
    report = run(tmp_path, distinct_chats(60))
    assert report.ok is True
    assert report.warnings == []


def test_it_warns_about_exact_duplicates_with_their_lines(tmp_path):
    rows = distinct_chats(60)
    rows[11] = rows[2]
    rows[40] = rows[2]
    rows[50] = rows[7]
    report = run(tmp_path, rows)
    assert report.ok is True
    assert warning(report, "duplicate_rows") == {
        "code": "duplicate_rows",
        "message": "3 rows repeat an earlier row exactly "
        "(the first, line 12, is a copy of line 3).",
        "count": 3,
        "lines": [12, 41, 51],
    }


def test_duplicates_are_judged_on_the_canonical_record(tmp_path):
    rows = distinct_chats(60)
    rows.append({"messages": [{"content": "Question 0?", "role": "user"}, rows[0]["messages"][1]]})
    report = run(tmp_path, rows)
    assert warning(report, "duplicate_rows")["message"] == (
        "1 row repeats an earlier row exactly (line 61, a copy of line 1)."
    )


def test_it_warns_about_empty_fields(tmp_path):
    rows = distinct_chats(60)
    rows[4] = chat(("system", ""), ("user", "Hi"), ("assistant", "Hello"))
    rows[9] = chat(("user", " "), ("assistant", "Hello"))
    assert warning(run(tmp_path, rows), "empty_field") == {
        "code": "empty_field",
        "message": "2 rows have an empty field (the first: line 5, `messages[0].content`).",
        "count": 2,
        "lines": [5, 10],
    }


def test_an_empty_prompt_is_a_warning_not_an_error(tmp_path):
    rows = [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(60)]
    rows[0]["prompt"] = ""
    report = run(tmp_path, rows)
    assert report.ok is True
    assert warning(report, "empty_field")["message"] == (
        "1 row has an empty field (line 1, `prompt`)."
    )


def test_it_warns_about_very_long_rows(tmp_path):
    rows = distinct_chats(60)
    rows[3] = chat(("user", "Summarise."), ("assistant", "x" * 20_000))
    rows[8] = chat(("user", "Summarise."), ("assistant", "y" * 40_201))
    assert warning(run(tmp_path, rows), "long_rows") == {
        "code": "long_rows",
        "message": "2 rows are over 16,000 characters (the longest, line 9, has 40,211); "
        "long rows take more memory in training and may be cut to the model's context length.",
        "count": 2,
        "lines": [4, 9],
    }


def test_it_warns_about_imbalanced_labels(tmp_path):
    rows = [{"text": f"review {i}", "label": "ham"} for i in range(95)]
    rows += [{"text": f"offer {i}", "label": "spam"} for i in range(5)]
    assert warning(run(tmp_path, rows), "label_imbalance") == {
        "code": "label_imbalance",
        "message": "The labels are imbalanced: the rarest, 'spam', has 5 rows (5.0%); "
        "the commonest, 'ham', has 95 (95.0%).",
        "count": 5,
        "lines": [],
    }


def test_balanced_labels_get_no_warning(tmp_path):
    rows = [{"text": f"review {i}", "label": "ham" if i % 2 else "spam"} for i in range(100)]
    assert run(tmp_path, rows).warnings == []


def test_it_warns_about_too_few_rows(tmp_path):
    assert warning(run(tmp_path, distinct_chats(12)), "few_rows") == {
        "code": "few_rows",
        "message": "Only 12 rows: fine-tuning needs at least 50, and a few hundred is better.",
        "count": 12,
        "lines": [],
    }


def test_generation_stats_describe_lengths_turns_and_roles(tmp_path):
    rows = [chat(("user", "q" * i), ("assistant", "a" * i)) for i in range(1, 101)]
    rows[0] = chat(
        ("system", "s"), ("user", "q"), ("assistant", "a"), ("user", "q"), ("assistant", "a")
    )
    report = run(tmp_path, rows)
    stats = report.stats
    assert stats["rows"] == 100
    length = stats["length"]
    assert (length["unit"], length["min"], length["max"]) == ("characters", 4, 200)
    assert (length["p50"], length["p95"]) == (100, 190)
    assert length["mean"] == round((4 + 1 + sum(2 * i for i in range(2, 101))) / 100, 1)
    assert sum(length["histogram"]["counts"]) == 100
    assert len(length["histogram"]["edges"]) == len(length["histogram"]["counts"]) + 1
    assert 20 <= len(length["histogram"]["counts"]) <= 31
    assert stats["turns"] == {
        "mean": 2.03,
        "max": 5,
        "histogram": {"edges": [2, 3, 4, 5, 6], "counts": [99, 0, 0, 1]},
    }
    assert stats["roles"] == {"system": 1, "user": 101, "assistant": 101}
    assert json.loads(json.dumps(report.as_dict())) == report.as_dict()


def test_classification_stats_list_labels_commonest_first(tmp_path):
    labels = ["b"] * 30 + ["a"] * 30 + ["c"] * 40
    rows = [{"text": f"text {i}", "label": label} for i, label in enumerate(labels)]
    stats = run(tmp_path, rows).stats
    assert stats["labels"] == [
        {"label": "c", "count": 40},
        {"label": "a", "count": 30},
        {"label": "b", "count": 30},
    ]
    assert "turns" not in stats
    assert sum(stats["length"]["histogram"]["counts"]) == 100


@pytest.mark.parametrize(
    ("span", "width"), [(1, 1), (30, 1), (31, 2), (100, 4), (1000, 40), (16000, 600)]
)
def test_histogram_bins_have_round_widths(span, width):
    assert bin_width(span) == width


def test_histogram_counts_sum_to_the_rows_and_edges_bracket_the_values():
    counts = {value: value % 7 + 1 for value in range(13, 5000, 3)}
    result = histogram(counts)
    assert sum(result["counts"]) == sum(counts.values())
    assert result["edges"][0] <= 13
    assert result["edges"][-1] > 4999
    assert histogram({5: 3}) == {"edges": [5, 6], "counts": [3]}


@pytest.mark.parametrize("buffer_rows", [4, 1000])
def test_the_duplicate_finder_gives_the_same_answer_in_memory_and_spilled(
    tmp_path, monkeypatch, buffer_rows
):
    monkeypatch.setattr(duplicates, "BUFFER_ROWS", buffer_rows)
    rng = random.Random(7)  # noqa: S311  (test data, not secrets)
    values = [rng.randrange(150) for _ in range(400)]
    finder = DuplicateFinder(tmp_path)
    for line, value in enumerate(values, start=1):
        finder.add(hash(str(value).encode()), line)
    count, examples = finder.finish()
    first_line = {}
    expected = []
    for line, value in enumerate(values, start=1):
        if value in first_line:
            expected.append((line, first_line[value]))
        else:
            first_line[value] = line
    assert count == len(expected)
    assert examples == expected[:10]
    assert list(tmp_path.iterdir()) == []


def test_duplicates_spill_to_disk_and_leave_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(duplicates, "BUFFER_ROWS", 8)
    rows = distinct_chats(100)
    rows[90] = rows[5]
    report = run(tmp_path, rows)
    assert warning(report, "duplicate_rows")["lines"] == [91]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        "records.idx",
        "records.jsonl",
    ]
