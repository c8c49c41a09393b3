"""The job runner's parts. `bot.core.jobs.JobRunner` composes them; see its docstring for the layout."""
