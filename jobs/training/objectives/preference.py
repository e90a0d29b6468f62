"""Preference tuning of a causal LM against a reference: DPO on chosen/rejected
pairs (TRL's DPOTrainer), KTO on answers marked good or bad (TRL's KTOTrainer).

The reference is the model the run starts from. A new adapter: TRL computes
the reference with the adapter disabled, i.e. the base. Continuing from an
earlier job's adapter (`paths.start_adapters`): the model reaches TRL as a
PeftModel with that adapter trainable and no `ref_model`, and TRL copies the
adapter as a frozen second adapter named "ref", whose forward pass is the
reference: the parent job's model, not the bare base (the reference DPO's
beta keeps the tuned model near). The copy is dropped from the saved adapter
(loop.py). A full fine-tune gets TRL's frozen copy of the base.

`beta` is `config.preference.beta`. Evaluations report the reward margin
and, for DPO, the preference accuracy (the share of validation pairs whose
chosen answer gains more over the reference than the rejected one).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

from jobs.vocabulary import CAUSAL_LM, ObjectiveName

from .. import arguments, data, loading
from . import tokenised
from .base import Built, Objective, Run


class _AgainstReference(Objective):
    """What DPO and KTO share: the model, its adapter, the arguments, the checks."""

    model_task = CAUSAL_LM
    kind: ClassVar[str]  # "pairs" or "answers", for the log line

    @abstractmethod
    def rows(self, records: list[dict], *, what: str) -> list[dict]:
        """TRL's rows of the canonical records (TrainingFailure "dataset" for a bad one)."""

    @abstractmethod
    def trainer(self, rows: list[dict]):
        """(config class, trainer class, extra config arguments) for the training rows."""

    def build(self, run: Run) -> Built:

        config, paths, on_event = run.config, run.paths, run.on_event
        t = config.training
        tokenizer = loading.load_tokenizer(paths.model_source)
        if not tokenizer.chat_template:
            raise loading.model_load_failure(
                "its tokenizer has no chat template, which preference data needs"
            )
        train_rows = self.rows(run.train_records, what="training file")
        eval_rows = None
        if run.eval_records is not None:
            eval_rows = self.rows(run.eval_records, what="validation file")

        on_event(
            {
                "kind": "log",
                "message": arguments.describe_loading(paths.model_source, config.model.method),
            }
        )
        model = loading.load_model(paths.model_source, task=CAUSAL_LM, method=config.model.method)
        model, peft_config = loading.adapter_setup(
            model, config, paths, task=CAUSAL_LM, on_event=on_event
        )
        has_validation = eval_rows is not None
        common = arguments.common_arguments(config, paths, has_validation=has_validation)
        config_class, trainer_class, extra = self.trainer(train_rows)
        args = config_class(
            **common,
            beta=config.preference.beta,
            max_length=t.max_seq_length,
            prediction_loss_only=True,  # the loss and the logged rewards; no logits
            dataset_num_proc=None,
            **extra,
        )
        events, callbacks = arguments.callbacks(
            config, common, run, eval_rows=eval_rows, eval_metrics=self.eval_metrics
        )
        trainer = tokenised.made(
            trainer_class, train_rows=train_rows, eval_rows=eval_rows, unit=self.kind,
            config=config, on_event=on_event, model=model, args=args,
            processing_class=tokenizer, peft_config=peft_config, callbacks=callbacks,
        )  # fmt: skip
        return tokenised.built(
            trainer, paths=paths, tokenizer=tokenizer, events=events, eval_rows=eval_rows
        )


class DirectPreference(_AgainstReference):
    """DPO: the chosen answer's log-ratio to the reference over the rejected one's."""

    name = ObjectiveName.DPO
    eval_metrics = ("reward_margin", "preference_accuracy")
    kind = "pairs"

    def rows(self, records: list[dict], *, what: str) -> list[dict]:
        return data.preference_rows(records, what=what)

    def trainer(self, rows: list[dict]):
        from trl import DPOConfig, DPOTrainer

        return DPOConfig, DPOTrainer, {}


class KahnemanTversky(_AgainstReference):
    """KTO: good answers gain and bad ones lose against the reference, unpaired."""

    name = ObjectiveName.KTO
    eval_metrics = ("reward_margin",)
    kind = "answers"

    def rows(self, records: list[dict], *, what: str) -> list[dict]:
        rows = data.feedback_rows(records, what=what)
        if what == "training file":
            data.check_both_kinds(rows, what=what)
        return rows

    def trainer(self, rows: list[dict]):
        from trl import KTOConfig, KTOTrainer

        good = sum(row["label"] for row in rows)
        bad = len(rows) - good
        # The KTO paper (eq. 8) weighs the rarer kind up so that both weigh
        # about the same in the loss (TRL warns outside that range).
        weights = {}
        if good < bad:
            weights["desirable_weight"] = round(bad / good, 3)
        elif bad < good:
            weights["undesirable_weight"] = round(good / bad, 3)
        return KTOConfig, KTOTrainer, weights
