"""Tailor's inference engine: base models loaded once, adapters by name, panes in batches.

Plain Python that knows nothing of Django, Celery or HTTP. torch,
transformers and peft are imported inside the functions that use them, so
importing this package stays light. See README.md for the invariants.
"""

from .classify import classify
from .evaluate import evaluate_classification, evaluate_generation
from .generate import GenerationParams, generate
from .panes import PaneResult
from .pool import AdapterSpec, ModelPool, ModelSpec, PaneSpec, ServingFailure

__all__ = [
    "AdapterSpec",
    "GenerationParams",
    "ModelPool",
    "ModelSpec",
    "PaneResult",
    "PaneSpec",
    "ServingFailure",
    "classify",
    "evaluate_classification",
    "evaluate_generation",
    "generate",
]
