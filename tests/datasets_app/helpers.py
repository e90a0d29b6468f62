"""Small builders for dataset tests: files in each format, and waiting for a worker."""

import io
import json
import time

from django.core.files.uploadedfile import SimpleUploadedFile

from datasets_app.models import Dataset


def chat_jsonl(rows: int, *, start: int = 0) -> bytes:
    lines = []
    for i in range(start, start + rows):
        record = {
            "messages": [
                {"role": "system", "content": "You answer in one word."},
                {"role": "user", "content": f"What comes after {i}?"},
                {"role": "assistant", "content": str(i + 1)},
            ]
        }
        lines.append(json.dumps(record))
    return ("\n".join(lines) + "\n").encode()


def upload(name: str, content: bytes | str) -> SimpleUploadedFile:
    if isinstance(content, str):
        content = content.encode()
    return SimpleUploadedFile(name, content)


def csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def wait_until_finished(dataset_id, timeout: float = 60) -> Dataset:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dataset = Dataset.objects.get(pk=dataset_id)
        if dataset.status in ("ready", "invalid"):
            return dataset
        time.sleep(0.1)
    raise AssertionError(f"dataset {dataset_id} still {dataset.status} after {timeout} s")
