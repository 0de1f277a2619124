"""How a job's units run: the Celery app and broker, the canvas, one attempt of a unit,
its retry policy, leases and recovery.
"""
