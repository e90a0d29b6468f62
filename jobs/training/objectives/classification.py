"""A classifier: a base model's new head (and LoRA) learns labels (the HF Trainer)."""

from __future__ import annotations

from jobs.vocabulary import SEQUENCE_CLASSIFICATION, Adapter

from .. import arguments, data, loading
from ..contract import TrainingFailure
from .base import Built, Objective, Run


class SequenceClassification(Objective):
    """Cross-entropy over the labels the training file shows; evaluations report accuracy."""

    name = "classification"
    model_task = SEQUENCE_CLASSIFICATION
    eval_metrics = ("accuracy",)

    def build(self, run: Run) -> Built:
        import numpy as np
        from datasets import Dataset
        from peft import get_peft_model
        from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

        config, paths, on_event = run.config, run.paths, run.on_event
        t = config.training
        method = config.model.method
        tokenizer = loading.load_tokenizer(paths.model_source)
        train_rows = data.classification_rows(run.train_records, what="training file")
        # Continuing a classifier keeps its head: its labels, in its order.
        labels = loading.start_adapter_labels(paths)
        if labels is None:
            labels = data.label_list(train_rows)
        elif unknown := sorted({row["label"] for row in train_rows} - set(labels)):
            raise TrainingFailure(
                "dataset",
                "The training file has labels the adapter it continues from never learnt: "
                f"{', '.join(unknown[:5])}; start a new adapter to learn them.",
            )
        eval_rows = None
        if run.eval_records is not None:
            eval_rows = data.classification_rows(run.eval_records, what="validation file")
            data.check_labels(eval_rows, labels, what="validation file")

        on_event({"kind": "log", "message": arguments.describe_loading(paths.model_source, method)})
        model = loading.load_model(
            paths.model_source, task=SEQUENCE_CLASSIFICATION, method=method, labels=labels
        )
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        model, peft_config = loading.adapter_setup(
            model, config, paths, task=SEQUENCE_CLASSIFICATION, on_event=on_event
        )
        if peft_config is not None:
            # task_type SEQ_CLS puts the new classifier head in modules_to_save.
            model = get_peft_model(model, peft_config)
        if method != Adapter.FULL:
            loading.trainable_in_float32(model)

        label_ids = {label: i for i, label in enumerate(labels)}

        def tokenise(batch):
            encoded = tokenizer(batch["text"], truncation=True, max_length=t.max_seq_length)
            encoded["labels"] = [label_ids[label] for label in batch["label"]]
            return encoded

        def as_dataset(rows):
            return Dataset.from_list(rows).map(
                tokenise, batched=True, remove_columns=["text", "label"]
            )

        on_event({"kind": "log", "message": f"Tokenising {len(train_rows):,} rows"})
        has_validation = eval_rows is not None
        common = arguments.common_arguments(config, paths, has_validation=has_validation)
        events, callbacks = arguments.callbacks(
            config, common, run, eval_rows=eval_rows, eval_metrics=self.eval_metrics
        )

        def accuracy(prediction):
            predicted = np.argmax(prediction.predictions, axis=-1)
            return {"accuracy": float((predicted == prediction.label_ids).mean())}

        trainer = Trainer(
            model=model,
            args=TrainingArguments(**common, remove_unused_columns=False),
            train_dataset=as_dataset(train_rows),
            eval_dataset=as_dataset(eval_rows) if has_validation else None,
            processing_class=tokenizer,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=accuracy,
            callbacks=callbacks,
        )
        return Built(
            trainer=trainer,
            tokenizer=tokenizer,
            events=events,
            eval_rows=len(eval_rows) if has_validation else None,
            labels=labels,
        )
