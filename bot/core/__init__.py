"""The Discord-free core: settings, the job model, the store, the Novita client, media work and the runner.

Nothing here imports discord.py or the cogs (ruff enforces it: see `bot/core/ruff.toml`), so every piece can
run and be tested without Discord; the runner reports through the `Reporter` protocol that the Discord side
implements. `docs/architecture.md` maps the modules.
"""
