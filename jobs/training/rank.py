"""A rank other than 0 of a multi-device run (jobs/training/distributed.py).

    python -m jobs.training.rank SPEC.json

Its rank and the group's address come from the environment torch.distributed
reads. It builds the same run as rank 0 from the spec, reports nothing, and
asks rank 0's questions (stop? may we save?) through the same all-reduces,
answering "no objection" itself. Ends with status 0 when the run ends.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(spec_file: str) -> int:
    from .distributed import agreement, die_with_parent, paths_of

    die_with_parent(int(os.environ["TAILOR_RANK_PARENT"]))

    import torch

    from jobs.config import read_document

    from .loop import run_training

    spec = json.loads(Path(spec_file).read_text())
    local_rank = int(os.environ["LOCAL_RANK"])
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    config = read_document(spec["config"])
    resume = Path(spec["resume_from"]) if spec["resume_from"] else None
    agreed: list = []

    def stop() -> bool:
        if not agreed:
            agreed.extend(agreement())
        return agreed[0](False)

    def write() -> bool:
        if not agreed:
            agreed.extend(agreement())
        return agreed[1](True)

    run_training(
        config, paths_of(spec), task=spec["task"], on_event=lambda event: None,
        should_stop=stop, resume_from=resume, may_write=write,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
