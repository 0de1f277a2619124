"""Where a job's files live: a local directory or S3-compatible object storage, with safe
paths and whole-file writes.
"""
