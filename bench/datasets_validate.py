"""Benchmark: validating chat JSONL, for throughput and for memory that does not grow.

    .venv/bin/python bench/datasets_validate.py [--rows 100000 1000000]

Writes one chat JSONL file per size into a temporary folder (not timed),
then validates each in a fresh Python process, so that each peak RSS
(ru_maxrss, read by the child at its end) belongs to one size alone. Prints
rows, file size, wall seconds, rows/s, CPU seconds (user + system: the
figure that other work on a shared machine disturbs least), rows per CPU
second and peak RSS, then the ratio of the largest
size's peak RSS to the smallest's. Targets: at least 50,000 rows/s, peak RSS
under 300 MB, and a ratio near 1.
"""

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_ROWS_PER_SECOND = 50_000
TARGET_PEAK_RSS_MB = 300

# Mostly English, with the accents and scripts real data has.
_VOCABULARY = (
    "the a model data train answer question because which explain step first then "
    "result value example number small large fine tune token layer weight learning "
    "rate batch loss epoch gradient python function return list error file line "
    "customer order refund shipping address invoice account password reset email "
    "café naïve résumé über straße 東京 数据 модель"
)
_WORDS = _VOCABULARY.split()


def _sentence(rng: random.Random) -> str:
    words = rng.choices(_WORDS, k=rng.randint(4, 18))
    return " ".join(words).capitalize() + rng.choice(".?!")


def _text(rng: random.Random, sentences: list[str], mean_sentences: float) -> str:
    count = max(1, int(rng.expovariate(1 / mean_sentences)))
    return " ".join(rng.choices(sentences, k=count))


def write_chat_jsonl(path: Path, rows: int, seed: int = 0) -> None:
    """`rows` chat records: an optional system message, 1-3 exchanges, long-tailed lengths."""
    rng = random.Random(seed)  # noqa: S311  (test data, not secrets)
    sentences = [_sentence(rng) for _ in range(5000)]
    systems = [_text(rng, sentences, 2) for _ in range(50)]
    with open(path, "w", encoding="utf-8") as file:
        for _ in range(rows):
            messages = []
            if rng.random() < 0.5:
                messages.append({"role": "system", "content": rng.choice(systems)})
            for _ in range(rng.choice((1, 1, 1, 2, 3))):
                messages.append({"role": "user", "content": _text(rng, sentences, 3)})
                messages.append({"role": "assistant", "content": _text(rng, sentences, 8)})
            file.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(path: Path, out: Path) -> None:
    """Validate one file and print a JSON line: seconds, rows, ok, peak RSS."""
    sys.path.insert(0, str(ROOT))
    from datasets_app.engine import validate

    started = time.perf_counter()
    cpu_started = _cpu_seconds()
    report = validate(path, filename=path.name, out_path=out)
    seconds = time.perf_counter() - started
    cpu_seconds = _cpu_seconds() - cpu_started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "ok": report.ok,
                "rows": report.num_rows,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "peak_rss_mb": peak_kib / 1024,
                "warnings": [warning.code for warning in report.warnings],
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child", nargs=2, metavar=("SOURCE", "OUT"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        child(Path(arguments.child[0]), Path(arguments.child[1]))
        return 0

    results = []
    with tempfile.TemporaryDirectory(prefix="tailor-bench-") as folder:
        for rows in arguments.rows:
            source = Path(folder) / f"chat-{rows}.jsonl"
            print(f"writing {rows:,} rows …", file=sys.stderr)
            write_chat_jsonl(source, rows)
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(source), str(source.with_suffix(".out"))],
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(done.stdout)
            assert result["ok"], result
            result["mb"] = source.stat().st_size / 1e6
            results.append(result)
            source.unlink()

    print(
        f"{'rows':>10} {'file MB':>9} {'seconds':>8} {'rows/s':>9} "
        f"{'CPU s':>7} {'rows/CPU s':>11} {'peak RSS MB':>12}"
    )
    for result in results:
        print(
            f"{result['rows']:>10,} {result['mb']:>9.1f} {result['seconds']:>8.2f} "
            f"{result['rows'] / result['seconds']:>9,.0f} {result['cpu_seconds']:>7.2f} "
            f"{result['rows'] / result['cpu_seconds']:>11,.0f} {result['peak_rss_mb']:>12.1f}"
        )
    ratio = results[-1]["peak_rss_mb"] / results[0]["peak_rss_mb"]
    print(f"peak RSS {results[-1]['rows']:,} / {results[0]['rows']:,} rows: {ratio:.2f}")
    slowest = min(result["rows"] / result["seconds"] for result in results)
    largest = max(result["peak_rss_mb"] for result in results)
    met = slowest >= TARGET_ROWS_PER_SECOND and largest < TARGET_PEAK_RSS_MB
    print(
        f"targets (≥ {TARGET_ROWS_PER_SECOND:,} rows/s, peak RSS < {TARGET_PEAK_RSS_MB} MB): "
        + ("met" if met else "NOT met")
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
