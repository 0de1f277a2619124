"""The job store in Redis: the job model, and one module per Redis structure with its Lua scripts."""
