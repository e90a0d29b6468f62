"""Supervised fine-tuning of a causal LM on chats (TRL's SFTTrainer)."""

from __future__ import annotations

from jobs.vocabulary import CAUSAL_LM

from .. import arguments, data, loading
from . import tokenised
from .base import Built, Objective, Run

PLAIN_TEXT_LOSS = "Plain text has no prompt: the loss is on every token of each row"


class SupervisedCausalLM(Objective):
    """Next-token loss on the assistant's turns (or every token of plain text)."""

    name = "supervised"
    model_task = CAUSAL_LM

    def build(self, run: Run) -> Built:
        from trl import SFTConfig, SFTTrainer
        from trl.chat_template_utils import has_generation_markers

        config, paths, on_event = run.config, run.paths, run.on_event
        t = config.training
        method = config.model.method
        tokenizer = loading.load_tokenizer(paths.model_source)
        if not tokenizer.chat_template:
            raise loading.model_load_failure(
                "its tokenizer has no chat template, which chat data needs"
            )
        # Plain text has no prompt to leave out: the loss is on the whole
        # sequence, whatever loss_on says (with a template without generation
        # markers, a completion needs a prompt turn before it).
        plain_text = data.is_plain_text(run.train_records)
        completions = t.loss_on == "completions" and not plain_text
        # Templates with {% generation %} markers give TRL the assistant mask;
        # for the rest (most Hub models) the last turn becomes a completion.
        markers = has_generation_markers(tokenizer.chat_template)
        prompt_completion = completions and not markers

        train_rows = data.chat_rows(
            run.train_records, what="training file", prompt_completion=prompt_completion
        )
        eval_rows = None
        if run.eval_records is not None:
            eval_rows = data.chat_rows(
                run.eval_records, what="validation file", prompt_completion=prompt_completion
            )

        on_event({"kind": "log", "message": arguments.describe_loading(paths.model_source, method)})
        model = loading.load_model(paths.model_source, task=CAUSAL_LM, method=method)
        model, peft_config = loading.adapter_setup(
            model, config, paths, task=CAUSAL_LM, on_event=on_event
        )

        has_validation = eval_rows is not None
        common = arguments.common_arguments(config, paths, has_validation=has_validation)
        args = SFTConfig(
            **common,
            max_length=t.max_seq_length,
            packing=t.packing,
            packing_strategy=loading.packing_strategy(),
            assistant_only_loss=completions and markers,
            completion_only_loss=prompt_completion,
            prediction_loss_only=True,  # eval needs the loss; logits would cost a second forward
            dataset_num_proc=None,
        )
        events, callbacks = arguments.callbacks(
            config, common, run, eval_rows=eval_rows, eval_metrics=self.eval_metrics
        )
        if plain_text and t.loss_on == "completions":
            on_event({"kind": "log", "message": PLAIN_TEXT_LOSS})
        trainer = tokenised.made(
            SFTTrainer, train_rows=train_rows, eval_rows=eval_rows, unit="rows", config=config,
            on_event=on_event, packed=t.packing, model=model, args=args, processing_class=tokenizer,
            peft_config=peft_config, callbacks=callbacks,
        )  # fmt: skip
        return tokenised.built(
            trainer, paths=paths, tokenizer=tokenizer, events=events, eval_rows=eval_rows
        )
