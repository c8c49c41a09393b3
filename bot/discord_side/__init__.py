"""The Discord side: the discord.py bot, delivery (the runner's `Reporter` for Discord), cards and views, the
forms, permissions, the moderation log, the usage embed, the invite link and the operator's setup and checks.

Named for what it is without shadowing the `discord` package itself. It uses the core (`bot/core/`) and never
the cogs: `cogs/` sits on top of both layers.
"""
