"""The one rule for paths read from the database: a file is served or loaded
only from inside the folder of the object that names it.

A row's path (a job's `adapter_path`, `export_path`) is written by the worker
that made the file, but it is only text in a table: whoever can change the
row (an admin form, a database shell, a bug) could point it at the secret key
or the database. Every place that opens such a path asks `inside` first.
Both sides are resolved, so `..` and symbolic links are judged by where they
lead, not by how they are spelled.
"""

from pathlib import Path


def inside(folder: Path | str, path: Path | str) -> bool:
    """Whether `path` lies within `folder` (or is it), once both are resolved.

    A path that does not exist yet is resolved as far as it exists; a
    relative path is refused, since it would be read from wherever the
    process happens to run.
    """
    path = Path(path)
    if not path.is_absolute():
        return False
    return path.resolve().is_relative_to(Path(folder).resolve())
