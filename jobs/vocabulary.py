"""The words for what is learnt (a task) and what trains (an adapter), defined
once for every layer.

One idea has a word on each side:

    a dataset's task   what its records teach   generation       classification
    a model's task     the head that learns it  causal-lm        sequence-classification

Each dataset task is learnt by exactly one model task, so the two words of a
pair name the same thing. Each resource shows its own word (a dataset's
`task` is generation or classification; a base model's or a job's is
causal-lm or sequence-classification), and every `?task=` filter of the API
accepts all four words (canonical for the list first, the other side's as
aliases). Plain Python with no imports: the engines, the job configuration
and the web layer all read it.
"""

GENERATION = "generation"
CLASSIFICATION = "classification"
# Preference pairs (a prompt, a chosen and a rejected answer: DPO) and
# single-answer feedback (a prompt, an answer, thumbs up or down: KTO). Both
# are learnt by a causal LM, so they are the two dataset tasks that share a
# model task with another (generation).
PREFERENCE = "preference"
FEEDBACK = "feedback"
DATASET_TASKS = (GENERATION, CLASSIFICATION, PREFERENCE, FEEDBACK)

CAUSAL_LM = "causal-lm"
SEQUENCE_CLASSIFICATION = "sequence-classification"
MODEL_TASKS = (CAUSAL_LM, SEQUENCE_CLASSIFICATION)

# How a sentence names a model task: "… needs a text generation model".
MODEL_TASK_LABELS = {CAUSAL_LM: "text generation", SEQUENCE_CLASSIFICATION: "text classification"}

MODEL_TASK_FOR_DATASET_TASK = {
    GENERATION: CAUSAL_LM,
    CLASSIFICATION: SEQUENCE_CLASSIFICATION,
    PREFERENCE: CAUSAL_LM,
    FEEDBACK: CAUSAL_LM,
}
# A `?task=causal-lm` filter on datasets means what a causal LM learns first:
# generation (preference and feedback data are asked for by their own words).
DATASET_TASK_FOR_MODEL_TASK = {CAUSAL_LM: GENERATION, SEQUENCE_CLASSIFICATION: CLASSIFICATION}

# What a `?task=` filter accepts, on datasets and on models and jobs alike.
DATASET_TASK_WORDS = (*DATASET_TASKS, *MODEL_TASKS)
MODEL_TASK_WORDS = (*MODEL_TASKS, *DATASET_TASKS)
DATASET_TASK_FILTER_HELP = (
    "generation or classification, as a dataset's `task` says; causal-lm and "
    "sequence-classification (the model task that learns it) mean the same."
)
MODEL_TASK_FILTER_HELP = (
    "causal-lm or sequence-classification, as a model's `task` says; generation and "
    "classification (the dataset task it learns) mean the same."
)


# --- what a job trains of its base model: the adapter -------------------------------
#
# A job file's `model.method` names it (the field keeps its name: users' files
# use it). It is not the training objective, which OpenAI's `method.type`
# names (supervised, dpo; see ObjectiveName below): every objective trains one of these.
# A namespace of plain strings rather than an Enum: the words go into stored
# documents, YAML and JSON as they are.


class Adapter:
    QLORA = "qlora"  # LoRA on a 4-bit (nf4) base
    LORA = "lora"  # LoRA on the full-precision base
    FULL = "full"  # no adapter: every weight trains


ADAPTERS = (Adapter.QLORA, Adapter.LORA, Adapter.FULL)
# The choice as the wizard and the API describe it.
ADAPTER_LABELS = {
    Adapter.QLORA: "QLoRA (4-bit base + LoRA adapter)",
    Adapter.LORA: "LoRA (adapter on the full-precision base)",
    Adapter.FULL: "Full fine-tune (every weight; small models only)",
}
# The short name a list or a page shows: "QLoRA · quick".
ADAPTER_NAMES = {adapter: label.split(" (")[0] for adapter, label in ADAPTER_LABELS.items()}


# --- what a run optimises: the objective -------------------------------------------
#
# OpenAI's `method.type` names it (supervised, dpo); a job stores it in
# FineTuneJob.objective and its configuration's `objective` field. A dataset's
# task decides it, except that a merge trains nothing (it combines adapters).


class ObjectiveName:
    SUPERVISED = "supervised"  # next-token loss on the answers (causal LM)
    CLASSIFICATION = "classification"  # cross-entropy over labels (classifier head)
    DPO = "dpo"  # direct preference optimisation on chosen/rejected pairs
    KTO = "kto"  # Kahneman-Tversky optimisation on answers marked good or bad
    MERGE = "merge"  # no training: adapters of one base combined into one


OBJECTIVE_LABELS = {
    ObjectiveName.SUPERVISED: "Supervised fine-tuning",
    ObjectiveName.CLASSIFICATION: "Classifier training",
    ObjectiveName.DPO: "Preference tuning (DPO)",
    ObjectiveName.KTO: "Feedback tuning (KTO)",
    ObjectiveName.MERGE: "Adapter merge",
}
OBJECTIVES = tuple(OBJECTIVE_LABELS)
OBJECTIVE_FOR_DATASET_TASK = {
    GENERATION: ObjectiveName.SUPERVISED,
    CLASSIFICATION: ObjectiveName.CLASSIFICATION,
    PREFERENCE: ObjectiveName.DPO,
    FEEDBACK: ObjectiveName.KTO,
}
# Objectives that start, usually, from an earlier job's adapter.
PREFERENCE_OBJECTIVES = (ObjectiveName.DPO, ObjectiveName.KTO)


def as_dataset_task(word: str) -> str:
    """The dataset task `word` names (either side's word); `word` must be one of them."""
    return DATASET_TASK_FOR_MODEL_TASK.get(word, word)


def as_model_task(word: str) -> str:
    """The model task `word` names (either side's word); `word` must be one of them."""
    return MODEL_TASK_FOR_DATASET_TASK.get(word, word)
