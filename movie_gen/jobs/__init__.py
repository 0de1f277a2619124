"""What a user does to a job (submit, look up, retry, cancel), how a run ends, and the job
as its answers show it.
"""
