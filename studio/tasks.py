"""Tasks every worker answers, whatever its queue."""

import os
import platform
import socket

from celery import shared_task

from studio.services import leases


@shared_task(name="studio.worker_facts")
def worker_facts() -> dict:
    """What this worker runs on: host, process, Python, torch and its device.

    Operators use it to see what each queue's workers can do; torch is
    imported here, in the worker, never in the web process.
    """
    import torch

    facts = {
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "python": platform.python_version(),
        "torch": torch.__version__.split("+")[0],
        "cuda": torch.cuda.is_available(),
        "devices": [],
    }
    if facts["cuda"]:
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            facts["devices"].append(
                {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1)}
            )
    return facts


@shared_task(name="studio.maintenance", ignore_result=True)
def maintenance() -> dict:
    """Beat, on the maintenance queue: take back what dead or stalled workers
    held, and send what waits with no message (studio/services/leases.py)."""
    return leases.run_maintenance()
