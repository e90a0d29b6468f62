"""Signals other apps listen to, so that jobs never imports them."""

from django.dispatch import Signal

# Sent by the ledger once a job's status is succeeded (committed), with job=.
job_succeeded = Signal()
