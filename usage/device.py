"""The device this process trains on, as `DeviceUse` records it.

Imports torch: called by the training worker's pool process (which trains
on that device anyway), never by the web process. A worker's parent does
not call it either: CUDA does not survive the fork of its pool children
(ops/facts.py reads the same name from nvidia-smi for the heartbeat).
"""

import logging

logger = logging.getLogger(__name__)


def training_device() -> str:
    """The CPU ("cpu"), or the name of the CUDA device training uses: torch's,
    which is the driver's, the name nvidia-smi and so /ops/ show."""
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    try:
        return torch.cuda.get_device_name(torch.cuda.current_device())
    except RuntimeError:  # a device that fails here fails training too, in its own words
        logger.exception("Could not read the CUDA device's name")
        return "cuda"
