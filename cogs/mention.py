"""Reply-with-image by mention: "@Hailuo make it snow --duration 10" on (or in reply to) an image.

No privileged intent is needed for the member's own message: Discord delivers the content of messages that
mention the bot. There is no interaction here, so the job card is an ordinary bot message replying to the
member (its ids are stored, no token), refusals are one-sentence replies that ping nobody, and the result
replies to the message the image came from (the member's mention, or the message it replied to).

The message a member replies to is another matter. Without the message-content intent (MESSAGE_CONTENT_INTENT
off, the default) Discord sends it blank unless it is the bot's own or mentions the bot, so its image can't be
seen: the member is told, in one sentence, to use "Animate image" (whose target Discord always shows) or to
ask the operator to turn the intent on; the bot never guesses. With the intent, any replied-to image is used.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.core import preferences
from bot.core.i18n import Text, _, render
from bot.core.mention_flags import addresses_bot, parse_mention
from bot.core.models import Entry, JobRequest
from bot.core.preferences import Preferences
from bot.core.validation import visible_text
from bot.discord_side.answers import OOPS
from bot.discord_side.forms import ImageSource, pick_image
from bot.discord_side.job_starter import member_roles

if TYPE_CHECKING:
    from bot.discord_side.app import HailuoBot

log = logging.getLogger("cogs.mention")

EMPTY_PROMPT = _(
    "Tell me what should happen after the mention, for example: “@{name} the waves crash on the rocks "
    "--duration 10”. Attach an image to animate it."
)
UNREADABLE = _("I couldn't read the message you replied to. Attach the image to your own message instead.")
HIDDEN = _(
    "I can't see the image in the message you replied to, because Discord only shows me messages that "
    "mention me: use Apps → Animate image on that message, or ask whoever runs this bot to turn on its "
    "Message Content intent."
)
_MENTION = re.compile(r"<(@!?|@&|#)([0-9]{1,20})>")
_HANDLED = (discord.MessageType.default, discord.MessageType.reply)


def readable_mentions(text: str, message: discord.Message) -> str:
    """Other members', roles' and channels' mentions as plain names, the way Discord shows them."""
    users = {u.id: u.display_name for u in message.mentions}
    roles = {r.id: r.name for r in message.role_mentions}
    channels = {c.id: getattr(c, "name", "channel") for c in message.channel_mentions}

    def name(match: re.Match[str]) -> str:
        kind, ident = match.group(1), int(match.group(2))
        if kind == "#":
            return f"#{channels.get(ident, 'channel')}"
        if kind == "@&":
            return f"@{roles.get(ident, 'role')}"
        return f"@{users.get(ident, 'someone')}"

    return _MENTION.sub(name, text)


class Mention(commands.Cog):
    def __init__(self, bot: HailuoBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        if me is None or message.author.bot or message.guild is None or message.type not in _HANDLED:
            return
        own_role = message.guild.self_role  # members often pick the bot's role from autocomplete
        roles = [own_role.id] if own_role is not None else []
        if not addresses_bot(message.content, me.id, roles):
            return
        try:
            await self.handle(message, me.id, roles)
        except Exception:
            log.exception("mention %s failed", message.id)
            await self.refuse(message, OOPS)

    @staticmethod
    def locale(message: discord.Message) -> str | None:
        """A mention answers no interaction, so Discord tells us nothing of the member's language: the
        server's preferred locale is the best guess (English without one)."""
        return str(message.guild.preferred_locale) if message.guild is not None else None

    async def refuse(self, message: discord.Message, text: Text | str) -> None:
        try:
            await message.reply(
                render(text, self.locale(message)),
                mention_author=False,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            log.info("could not answer mention %s: %s %s", message.id, exc.status, exc.code)

    async def handle(self, message: discord.Message, bot_id: int, roles: list[int]) -> None:
        parsed = parse_mention(message.content, bot_id, roles)
        if parsed.error:
            await self.refuse(message, parsed.error)
            return
        prompt = readable_mentions(parsed.prompt, message).strip()
        if not visible_text(prompt):
            name = self.bot.user.display_name if self.bot.user else "Hailuo"
            await self.refuse(message, EMPTY_PROMPT.with_params(name=name))
            return
        source, refusal = await self.find_image(message)
        if refusal:
            await self.refuse(message, refusal)
            return
        author = message.author
        guild_id = message.guild.id if message.guild else None
        prefs = await self.bot.store.member_prefs(guild_id, author.id) if guild_id else Preferences()
        chosen = preferences.resolve(  # the flags win over the member's /preferences
            prefs,
            allowed=await self.bot.starter.allowed_models(guild_id),
            has_image=source is not None,
            duration=parsed.duration,
            resolution=parsed.resolution,
            prompt_expansion=parsed.prompt_expansion,
            model=parsed.model,
        )
        request = JobRequest(
            guild_id=message.guild.id if message.guild else None,
            channel_id=message.channel.id,
            user_id=author.id,
            user_name=str(author),
            role_ids=member_roles(author),
            prompt=prompt,
            duration=chosen.duration,
            resolution=chosen.resolution,
            prompt_expansion=chosen.prompt_expansion,
            image_url=source.url if source else None,
            image_name=source.filename if source else None,
            entry=Entry.MENTION,
            source_message_id=source.message_id if source else message.id,  # the result replies there
            model=chosen.model,
            locale=self.locale(message),
        )
        await self.bot.starter.start_from_message(message, request, lambda text: self.refuse(message, text))

    async def find_image(self, message: discord.Message) -> tuple[ImageSource | None, Text | str | None]:
        """The member's own image first, else the image of the message they replied to."""
        source, refusal = pick_image(message, self.bot.settings.image_origins)
        if source is not None or refusal is not None:
            return source, refusal
        reference = message.reference
        if (
            reference is None
            or reference.message_id is None
            or reference.type != discord.MessageReferenceType.default
        ):
            return None, None
        target = reference.resolved
        if isinstance(target, discord.DeletedReferencedMessage):
            return None, None
        if target is None:
            try:
                target = await message.channel.fetch_message(reference.message_id)
            except discord.NotFound:
                return None, None
            except discord.HTTPException:
                return None, UNREADABLE
        if self._hidden(target):
            return None, HIDDEN
        return pick_image(target, self.bot.settings.image_origins)

    def _hidden(self, message: discord.Message) -> bool:
        """Without the message-content intent Discord blanks other members' messages that don't mention the
        bot, including the one replied to: whether it held an image can't be known, so don't guess. (The
        bot's own messages and those mentioning it arrive whole, so their images are used.)"""
        blank = not (message.content or message.attachments or message.embeds or message.stickers)
        me = self.bot.user
        return blank and not self.bot.intents.message_content and (me is None or message.author.id != me.id)


async def setup(bot: HailuoBot) -> None:
    await bot.add_cog(Mention(bot))
