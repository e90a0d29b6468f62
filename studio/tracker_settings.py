"""The experiment trackers a job may report to (jobs/training/trackers.py):
their addresses, modes and credentials, which are the operator's. A job's
configuration names only the project or experiment (`tracking.*`). Read on
training workers; `studio.settings` takes them from here (through
machine_settings). README: "Trackers".
"""

from studio.env import env_choice, env_int, env_str

# `online` logs to the W&B server as the run goes; `offline` writes the run
# under the job's folder (attempt-N/wandb/) for `wandb sync`; `disabled`
# turns W&B off, and a job that names a project says so in its log.
TAILOR_WANDB_MODE = env_choice(
    "TAILOR_WANDB_MODE", "online", {"online", "offline", "disabled"}
).lower()
# Empty: W&B's cloud; a self-hosted server's address otherwise.
TAILOR_WANDB_BASE_URL = env_str("TAILOR_WANDB_BASE_URL")
# Empty: wandb's own WANDB_API_KEY, or the worker's ~/.netrc.
TAILOR_WANDB_API_KEY = env_str("TAILOR_WANDB_API_KEY") or env_str("WANDB_API_KEY")
# Empty: MLflow is off. A server (http://mlflow:5000) or a file store
# (file:///srv/mlruns); MLFLOW_TRACKING_USERNAME / _PASSWORD / _TOKEN, when a
# server needs them, are read by mlflow itself from the worker's environment.
TAILOR_MLFLOW_TRACKING_URI = env_str("TAILOR_MLFLOW_TRACKING_URI")
# How long a tracker may take to answer before the job goes on without it.
TAILOR_TRACKER_TIMEOUT_S = env_int("TAILOR_TRACKER_TIMEOUT_S", 10, minimum=1)
