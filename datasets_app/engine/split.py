"""Splitting a canonical file into train and validation files."""

from pathlib import Path

from datasets_app.engine.canonical import CanonicalWriter


def validation_size(num_rows: int, fraction: float) -> int:
    """Validation rows: round(num_rows × fraction), at least 1 and at most num_rows - 1.

    At least one, so that asking for a validation set gives one; at most
    num_rows - 1, so that training always has a row. A single row cannot be
    split: it all goes to training.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be at least 0 and below 1 (got {fraction})")
    if not fraction or num_rows < 2:
        return 0
    return min(max(round(num_rows * fraction), 1), num_rows - 1)


def split(
    canonical: Path,
    *,
    num_rows: int,
    fraction: float,
    seed: int,
    train_out: Path,
    validation_out: Path,
) -> tuple[int, int]:
    """Write a seeded random `fraction` of the records to `validation_out`, the rest to `train_out`.

    Returns (train rows, validation rows). The same file, fraction and seed
    give the same split; each output keeps the records in their file order and
    gets its .idx. Memory: one byte per row for the choice, plus numpy's
    choice of indices (eight bytes per validation row at most). Raises
    ValueError when the file does not hold exactly `num_rows` records; then
    neither output is left behind.
    """
    import numpy as np

    size = validation_size(num_rows, fraction)
    chosen = np.zeros(num_rows, dtype=np.uint8)
    if size:
        chosen[np.random.default_rng(seed).choice(num_rows, size=size, replace=False)] = 1
    to_validation = chosen.tobytes()
    del chosen
    with (
        CanonicalWriter(train_out) as train,
        CanonicalWriter(validation_out) as validation,
        open(canonical, "rb") as source,
    ):
        rows = 0
        for line in source:
            if rows == num_rows:
                raise ValueError(f"{canonical} holds more than the {num_rows:,} rows expected")
            (validation if to_validation[rows] else train).write(line)
            rows += 1
        if rows != num_rows:
            raise ValueError(f"{canonical} holds {rows:,} rows, not the {num_rows:,} expected")
        train.commit()
        validation.commit()
    return train.rows, validation.rows
