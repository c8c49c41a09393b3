"""A small real discord.py bot used to prove the fake (run as `python -P demo_bot.py`, token in DISCORD_TOKEN,
with tests/fakes/discord_patch on PYTHONPATH and HAILUO_FAKE_DISCORD_URL set). It reports what Discord
answered in its replies so the test can check both sides."""

from __future__ import annotations

import asyncio
import io
import logging
import os

import discord
from discord import app_commands
from discord.ext import commands

log = logging.getLogger("demo_bot")


class DemoBot(commands.Bot):
    def __init__(self) -> None:
        intents = discord.Intents.default()
        intents.message_content = False
        super().__init__(command_prefix=commands.when_mentioned, intents=intents)

    async def setup_hook(self) -> None:
        self.tree.add_command(video)
        self.tree.add_command(probe)
        await self.tree.sync()

    async def on_ready(self) -> None:
        print("DEMO READY", flush=True)

    async def on_resumed(self) -> None:
        print("DEMO RESUMED", flush=True)

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or self.user is None or self.user not in message.mentions:
            return
        text = message.content.replace(self.user.mention, "").strip()
        ref = ""
        if message.reference is not None and isinstance(message.reference.resolved, discord.Message):
            ref = f" (replying to {len(message.reference.resolved.attachments)} attachment(s))"
        await message.reply(f"pong: {text}{ref}", mention_author=True)


@app_commands.command(name="video", description="Turn a prompt and an optional image into a video")
@app_commands.describe(prompt="What should happen", image="First frame")
async def video(
    interaction: discord.Interaction,
    prompt: app_commands.Range[str, 1, 2000],
    image: discord.Attachment | None = None,
) -> None:
    embed = discord.Embed(title="Video job", description=prompt)
    embed.add_field(name="State", value="queued")
    await interaction.response.send_message(embed=embed)
    for state in ("queued at Novita", "generating 50%", "uploading"):
        await asyncio.sleep(0.05)
        embed.set_field_at(0, name="State", value=state)
        await interaction.edit_original_response(embed=embed)
    data = await image.read() if image is not None else b"text-to-video"
    embed.set_field_at(0, name="State", value="done")
    name = image.filename if image is not None else "result.txt"
    await interaction.edit_original_response(embed=embed, attachments=[discord.File(io.BytesIO(data), name)])


@app_commands.command(name="probe", description="Exercise one Discord behaviour")
@app_commands.choices(
    action=[app_commands.Choice(name=a, value=a) for a in ("ping", "upload", "toolarge", "denied", "late")]
)
async def probe(
    interaction: discord.Interaction,
    action: str,
    delay: float = 0.0,
    channel: discord.TextChannel | None = None,
) -> None:
    where = interaction.channel
    assert isinstance(where, discord.TextChannel)
    if action == "ping":
        await interaction.response.send_message(f"pong {interaction.app_permissions.value}", ephemeral=True)
    elif action == "upload":
        await interaction.response.defer(ephemeral=True, thinking=True)
        msg = await where.send(
            "here is a file", file=discord.File(io.BytesIO(b"\x00\x01" * 1024), "clip.mp4")
        )
        fetched = await msg.attachments[0].read()
        await interaction.followup.send(f"uploaded {msg.id} {len(fetched)}", ephemeral=True)
    elif action == "toolarge":
        await interaction.response.defer(ephemeral=True, thinking=True)
        limit = interaction.guild.filesize_limit if interaction.guild else 10 * 1024 * 1024
        try:
            await where.send(file=discord.File(io.BytesIO(b"\x00" * (limit + 1)), "big.mp4"))
            result = "sent"
        except discord.HTTPException as exc:
            result = f"{exc.status} {exc.code}"
        await interaction.followup.send(f"toolarge: {result}", ephemeral=True)
    elif action == "denied":
        target = channel or where
        try:
            await target.send("hello")
            result = "sent"
        except discord.HTTPException as exc:
            result = f"{exc.status} {exc.code}"
        await interaction.response.send_message(f"denied: {result}", ephemeral=True)
    elif action == "late":
        await interaction.response.send_message("working")
        await asyncio.sleep(delay)
        try:
            await interaction.edit_original_response(content="late edit")
            result = "edited"
        except discord.HTTPException as exc:
            result = f"{exc.status} {exc.code}"
        await where.send(f"late edit: {result}")


def main() -> None:
    discord.utils.setup_logging(level=logging.INFO)
    DemoBot().run(os.environ["DISCORD_TOKEN"], log_handler=None)


if __name__ == "__main__":
    main()
