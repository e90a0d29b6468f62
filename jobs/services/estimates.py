"""Before Start: about how long a job takes and how much memory it needs.

Time follows the usual FLOP count of a transformer step (6 × parameters per
trained token for a full fine-tune; about 4 × for LoRA, which skips the
weight gradients of the frozen base) over the throughput of the training
device, a setting measured per machine (`TAILOR_TRAIN_FLOPS`). These are
estimates, shown as such; the job page then shows the real ETA.
"""

from django.conf import settings

from jobs.config import JobConfig, Plan
from jobs.services.catalog import memory_estimate

_FLOPS_PER_TOKEN_AND_PARAMETER = {"full": 6.0, "lora": 4.0, "qlora": 4.0}
# QLoRA dequantises every 4-bit weight on each use: measured 0.39 vs 0.37 s
# a step against LoRA on tailor-tiny (CPU, float32 compute).
_METHOD_SLOWDOWN = {"full": 1.0, "lora": 1.0, "qlora": 1.05}
# Loading the base, tokenising, the final evaluation and saving: a fixed
# cost per job (about 30 s for tailor-tiny on 2 CPU cores).
_SETUP_SECONDS = 30


def estimate(model, config: JobConfig, plan: Plan) -> dict:
    method = config.model.method
    flops = (
        _FLOPS_PER_TOKEN_AND_PARAMETER[method]
        * model.parameters
        * plan.total_tokens
        * _METHOD_SLOWDOWN[method]
    )
    seconds = flops / settings.TAILOR_TRAIN_FLOPS + _SETUP_SECONDS
    memory = memory_estimate(
        model.parameters,
        method,
        batch_size=config.training.batch_size,
        max_seq_length=config.training.max_seq_length,
    )
    return {
        "tokens": plan.total_tokens,
        "steps": plan.total_steps,
        "seconds": round(seconds),
        "memory_bytes": memory,
    }
