"""Worker processes for the web app: lanes, budgets of time and memory, and recovery from crashed workers.

    service = Service(workers=2, budgets=Budgets.from_env())
    report = service.analyze(load_spec("backbone: resnet50"))
"""
from .activity import Activity
from .jobs import JOBS
from .pool import Lane, WorkerPool, default_workers
from .service import Service

__all__ = ["Service", "WorkerPool", "Lane", "Activity", "JOBS", "default_workers"]
