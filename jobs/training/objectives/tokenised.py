"""What the objectives that train a causal LM through TRL share (supervised,
DPO, KTO): making the trainer on their rows, saying what tokenising left
out, and handing the loop a `Built`.

TRL tokenises while the trainer is made and drops rows whose prompt leaves
no room for an answer within `max_length`; a run with none left cannot
train (a "dataset" failure), a run that lost some says how many.
"""

from __future__ import annotations

from .. import loading
from ..contract import TrainingFailure
from .base import Built


def made(trainer_class, *, train_rows: list[dict], eval_rows: list[dict] | None, unit: str,
         config, on_event, packed: bool = False, **arguments):  # fmt: skip
    """A `trainer_class` (TRL's SFT, DPO or KTO trainer) on the rows
    (`unit`: "rows", "pairs", "answers"), given `arguments` (model, args,
    processing_class, peft_config, callbacks), checked as the module says.
    A packed run's dataset counts sequences, not rows: it says nothing of
    rows left out."""
    from datasets import Dataset

    max_length = config.training.max_seq_length
    on_event({"kind": "log", "message": f"Tokenising {len(train_rows):,} {unit}"})
    try:
        trainer = trainer_class(
            train_dataset=Dataset.from_list(train_rows),
            eval_dataset=Dataset.from_list(eval_rows) if eval_rows is not None else None,
            **arguments,
        )
    except IndexError as exc:
        # datasets/TRL index into the first row of a dataset that filtering emptied.
        raise nothing_fits(max_length) from exc
    kept = len(trainer.train_dataset)
    if kept == 0:
        raise nothing_fits(max_length)
    if not packed and kept < len(train_rows):
        on_event(
            {
                "kind": "log",
                "message": f"Left out {len(train_rows) - kept:,} {unit} whose prompt fills all "
                f"{max_length} tokens",
            }
        )
    return trainer


def built(trainer, *, paths, tokenizer, events, eval_rows: list | None) -> Built:
    """The loop's `Built`, the trainable weights in float32 where the
    device computes in it (TRL casts a 4-bit model's adapter to bfloat16,
    emulated on such a CPU), starting from the parent's values when the run
    continues an adapter."""
    if loading.compute_dtype_name() == "float32":
        loading.trainable_in_float32(trainer.model)
        loading.restore_start_weights(trainer.model, paths)
    return Built(
        trainer=trainer,
        tokenizer=tokenizer,
        events=events,
        eval_rows=len(eval_rows) if eval_rows is not None else None,
    )


def nothing_fits(max_length: int) -> TrainingFailure:
    return TrainingFailure(
        "dataset",
        f"No training row leaves room for an answer within {max_length} tokens; "
        "raise the maximum sequence length.",
    )
