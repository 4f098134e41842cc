"""The worker and its parts (see :mod:`dispatcher.worker.core`)."""

from dispatcher.worker.core import Worker, WorkerStopped, default_worker_name
from dispatcher.worker.recorder import WorkerStats

__all__ = ["Worker", "WorkerStats", "WorkerStopped", "default_worker_name"]
