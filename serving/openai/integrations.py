"""A fine-tuning job's `integrations`, in OpenAI's shape and in Tailor's.

OpenAI offers one integration, Weights & Biases:
`{"type": "wandb", "wandb": {"project": ..., "name": ..., "entity": ..., "tags": [...]}}`.
A create request's list becomes the `tracking` section of the job's
configuration (`jobs.config.TrackingConfig`), which the worker reports to
(jobs/training/trackers.py); a job object shows its W&B tracking in the same
shape. Where W&B is and its key are the operator's (README: "Trackers").
"""

from __future__ import annotations

from serving.openai.http import RequestError

# OpenAI's W&B fields and the tracking fields they fill.
WANDB_FIELDS = {
    "project": "wandb_project",
    "name": "wandb_name",
    "entity": "wandb_entity",
    "tags": "wandb_tags",
}
EXAMPLE = '{"type": "wandb", "wandb": {"project": "my-project"}}'


def _bad(param: str, message: str) -> RequestError:
    return RequestError(400, f"{param}: {message}", param=param)


def read_integrations(integrations) -> tuple[dict, dict[str, str]]:
    """The tracking section a create request's `integrations` asks for, and
    each tracking field's name as the client wrote it (for the
    configuration's errors). RequestError (400) for a shape OpenAI refuses."""
    if integrations is None:
        return {}, {}
    if not isinstance(integrations, list):
        raise _bad("integrations", "must be a list.")
    tracking: dict = {}
    params: dict[str, str] = {}
    for index, integration in enumerate(integrations):
        at = f"integrations[{index}]"
        if not isinstance(integration, dict):
            raise _bad(at, f"must be an object such as {EXAMPLE}.")
        kind = integration.get("type")
        if kind != "wandb":
            raise _bad(f"{at}.type", "must be 'wandb', the one integration offered here.")
        if tracking:
            raise _bad(at, "give at most one wandb integration.")
        for name in integration:
            if name not in ("type", "wandb"):
                raise _bad(f"{at}.{name}", "is not a field of an integration (type, wandb).")
        wandb = integration.get("wandb")
        if not isinstance(wandb, dict):
            raise _bad(f"{at}.wandb", 'must be an object such as {"project": "my-project"}.')
        tracking = _read_wandb(wandb, f"{at}.wandb")
        params = {f"tracking.{field}": f"{at}.wandb.{name}" for name, field in WANDB_FIELDS.items()}
    return tracking, params


def _read_wandb(wandb: dict, at: str) -> dict:
    for name in wandb:
        if name not in WANDB_FIELDS:
            raise _bad(f"{at}.{name}", f"is not a W&B setting ({', '.join(WANDB_FIELDS)}).")
    project = wandb.get("project")
    if not isinstance(project, str) or not project.strip():
        raise _bad(f"{at}.project", "name the W&B project to log the run to.")
    tracking = {"wandb_project": project}
    for name in ("name", "entity"):
        value = wandb.get(name)
        if value is not None and not isinstance(value, str):
            raise _bad(f"{at}.{name}", "must be text or null.")
        tracking[WANDB_FIELDS[name]] = value
    tags = wandb.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise _bad(f"{at}.tags", "must be a list of text.")
    tracking["wandb_tags"] = tags or []
    return tracking


def integrations_of(config: dict) -> list[dict]:
    """A job's integrations as OpenAI shows them: its W&B tracking, if any
    (MLflow, which OpenAI has no word for, shows only on Tailor's pages)."""
    tracking = config.get("tracking") or {}
    if not tracking.get("wandb_project"):
        return []
    wandb = {name: tracking.get(field) for name, field in WANDB_FIELDS.items()}
    wandb["tags"] = wandb["tags"] or None
    return [{"type": "wandb", "wandb": wandb}]
