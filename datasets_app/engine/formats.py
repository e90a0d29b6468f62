"""The file types and record formats Tailor accepts, and what each format reads."""

FILE_TYPES = ("jsonl", "json", "csv", "tsv", "parquet")

EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}

FORMATS = ("chat", "prompt_completion", "alpaca", "sharegpt", "text", "text_label")

FORMAT_LABELS = {
    "chat": "Chat (messages)",
    "prompt_completion": "Prompt / completion",
    "alpaca": "Alpaca (instruction / input / output)",
    "sharegpt": "ShareGPT (conversations)",
    "text": "Plain text",
    "text_label": "Text / label (classification)",
}

TASK_OF_FORMAT = {
    "chat": "generation",
    "prompt_completion": "generation",
    "alpaca": "generation",
    "sharegpt": "generation",
    "text": "generation",
    "text_label": "classification",
}

# The canonical source fields each format reads, in the order the normaliser
# takes them; a column mapping renames these.
FORMAT_FIELDS = {
    "chat": ["messages"],
    "prompt_completion": ["prompt", "completion"],
    "alpaca": ["instruction", "input", "output"],
    "sharegpt": ["conversations"],
    "text": ["text"],
    "text_label": ["text", "label"],
}

# The fields whose presence identifies a format, most specific first: a row
# with `text` and `label` is classification, not plain text.
SIGNATURES = (
    ("chat", frozenset({"messages"})),
    ("sharegpt", frozenset({"conversations"})),
    ("alpaca", frozenset({"instruction", "output"})),
    ("prompt_completion", frozenset({"prompt", "completion"})),
    ("text_label", frozenset({"text", "label"})),
    ("text", frozenset({"text"})),
)

SHAPES = (
    "messages; prompt + completion; instruction + input + output; conversations; text; text + label"
)

ROLES = ("system", "user", "assistant")

# ShareGPT's speaker names and the canonical role each becomes.
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
}
