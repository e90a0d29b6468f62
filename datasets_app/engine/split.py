"""Splitting a canonical file into train and validation files.

Rows that repeat each other exactly (a duplicate group) all land on one side:
a copy of a training row in the validation file would flatter the validation
loss. A file without duplicates is split exactly as a seeded random choice of
rows; see split().
"""

from pathlib import Path

from datasets_app.engine.canonical import CanonicalWriter
from datasets_app.engine.duplicates import DuplicateFinder

# The share of rows a studio user may hold out for validation (forms, API,
# services): at least 1 %, so that there is a validation set to speak of, and
# at most half, so that training keeps most of the rows. validation_size()
# itself takes any fraction from 0 to below 1.
MIN_VALIDATION_FRACTION = 0.01
MAX_VALIDATION_FRACTION = 0.5
# What a new dataset holds out when its owner does not say: 10 % is enough
# rows to see over-fitting on a few-thousand-row set, few enough not to
# starve training; the seed makes the split the same every time.
DEFAULT_VALIDATION_FRACTION = 0.1
DEFAULT_SPLIT_SEED = 42


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
    gets its .idx. Without duplicates the validation rows are
    `validation_size` rows chosen at random. With them, the rows are taken in
    the same random order, each bringing its whole duplicate group, and a
    group that would overfill the validation file stays in training; the
    validation file then holds at most `validation_size` rows (none when every
    group is larger than that). Memory: one byte per row for the choice, plus
    numpy's choice of indices (eight bytes per validation row at most), and the
    duplicate search's own (duplicates.py); with duplicates, about thirty
    bytes per row more while choosing. Reads the file twice. Raises
    ValueError when the file does not hold exactly `num_rows` records; then
    neither output is left behind.
    """
    import numpy as np

    size = validation_size(num_rows, fraction)
    rng = np.random.default_rng(seed)
    picked = rng.choice(num_rows, size=size, replace=False) if size else None
    chosen = np.zeros(num_rows, dtype=np.uint8)
    if size:
        group_of = _duplicate_groups(Path(canonical), num_rows)
        if group_of is None:
            chosen[picked] = 1
        else:
            chosen = _choose_groups(group_of, picked, size, rng)
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


def _duplicate_groups(canonical: Path, num_rows: int):
    """Each row's group (the index of the group's first row), or None without duplicates.

    The row count is checked when the outputs are written, after this.
    """
    import numpy as np

    finder = DuplicateFinder(canonical.parent)
    try:
        with open(canonical, "rb") as source:
            for row, line in enumerate(source):
                finder.add(hash(line), row)
        group_of = None
        for repeats, originals in finder.every_repeat():
            if group_of is None:
                group_of = np.arange(num_rows, dtype=np.int64)
            inside = repeats < num_rows  # a file longer than promised fails later
            group_of[repeats[inside]] = originals[inside]
        return group_of
    finally:
        finder.close()


def _choose_groups(group_of, picked, size: int, rng):
    """The validation rows: whole groups, in the order of the picks and then of
    a further seeded permutation, each while it fits in `size` rows."""
    import numpy as np

    num_rows = group_of.size
    group_size = np.bincount(group_of, minlength=num_rows)
    taken = np.zeros(num_rows, dtype=np.uint8)  # by group (its first row)
    room = size

    def take(rows) -> int:
        nonlocal room
        for group in group_of[rows].tolist():
            if taken[group]:
                continue
            rows_in_group = int(group_size[group])
            if rows_in_group <= room:
                taken[group] = 1
                room -= rows_in_group
                if not room:
                    break
        return room

    if take(picked):
        take(rng.permutation(num_rows))
    return taken[group_of]
