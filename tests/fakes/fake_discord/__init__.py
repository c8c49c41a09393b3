"""A loopback fake of Discord (REST API v10, gateway websocket, CDN) for end-to-end tests of the real bot.

The unmodified discord.py client logs in, connects, syncs commands, receives interactions and messages and
answers them; tests drive it as a Discord client would and inspect everything the bot did.

Usage (threaded fake, bot as a subprocess; in an async test use `async with FakeDiscord() as fake` and
`await` the wait_* methods instead)

    with FakeDiscord(token_lifetime=900).threaded() as fake:
        bot = subprocess.Popen([sys.executable, "-m", "bot"], env=fake.env(NOVITA_API_KEY="k", ...))
        fake.wait_until_ready(30); fake.wait_for_commands("video")
        inter = fake.slash("video", {"prompt": "a cat"}, attachments={"image": ("cat.png", png, "image/png")})
        assert inter.wait_response(timeout=3).type == 4 and inter.response_time < 0.25
        card = inter.wait_original(lambda m: "done" in m.text, timeout=60)
        states = [rev.embeds for rev in card.history]; video = card.attachments[0].data

Modules
    fake.py          FakeDiscord: construction and lifecycle (start/stop, threaded, env), composed of:
    world_building.py  WorldBuilding: users, guilds, channels, roles, permissions, files, arranged faults
    driving.py       Driving: slash/context-menu commands, clicks, selects, modals, messages, reactions
    queries.py       Queries: synced commands, recorded requests, messages, CDN bytes; the wait_* methods
    fake_base.py     FakeBase: the state those parts share, and their shared helpers
    state.py         World: state + shared rules (messages, mentions, permissions, CDN links, rate limits)
    model.py         dataclasses: User, Guild, Role, Member, Channel, Message (+history), Attachment, records
    payloads.py      JSON builders in Discord's shapes (snowflakes as strings)
    rest.py          RestApi: /api/v10 route table and middleware (recording, auth, 429s, late answers,
                     bodies and uploads), composed of the route groups:
    rest_users.py    users, the application, gateway URLs, DM channels
    rest_commands.py application commands (global and per guild)
    rest_interactions.py  interaction callbacks and the interaction webhook (follow-ups, @original)
    rest_messages.py channels and messages, typing, the bot's reactions
    rest_guilds.py   guilds, their channels, roles and members
    rest_cdn.py      the CDN (/cdn, /media): signed, expiring links to stored bytes
    rest_base.py     RestBase: request keys, JSON responses, uploads, helpers the groups share
    gateway.py       /gateway websocket: HELLO, IDENTIFY/READY/GUILD_CREATE, heartbeats, RESUME
    commands.py      application-command validation/storage, option typing for interactions
    interactions.py  Interaction handle + INTERACTION_CREATE builders (slash, menus, buttons, modals)
    sync.py          makes the API work from the fake's loop (await) and from other threads (blocking)
    demo_bot.py      a small discord.py bot used by tests/test_fake_discord.py
    ../discord_patch/sitecustomize.py  points discord.py at the fake when HAILUO_FAKE_DISCORD_URL is set

Implemented
    REST: users/@me, users/{id}, oauth2/applications/@me, gateway[/bot], global and guild commands
    (GET/PUT/POST/PATCH/DELETE, validated: names, descriptions, option types/order, choices, min/max_length),
    interaction callbacks 4/5/6/7/8/9 (JSON and multipart, `with_response`), webhook follow-ups (`wait`),
    @original and follow-up GET/PATCH/DELETE (first follow-up after a defer replaces the loading message),
    channel messages GET(list)/POST/GET/PATCH/DELETE with uploads, typing, own reactions, DM channel creation,
    guild / channels / roles / members reads. Signed, expiring CDN links serving the stored bytes.
    Enforced: Bot token (401), 3 s response window (404/10062), double ack (400/40060), token lifetime
    (401/50027), upload limit by boost tier / DMs (413/40005), channel permission overwrites (403/50001,
    50013), refused DMs (403/50007), unknown channel/message (404/10003/10008), content > 2000 and embed /
    component limits (400/50035), empty messages (400/50006), editing others' messages (403/50005),
    rate limits on demand (429 + X-RateLimit-*/Retry-After/Via headers discord.py needs to retry), a message
    nonce with enforce_nonce (the message made with it in the last `world.nonce_window` seconds is returned,
    no second one is made; nonces over 25 characters 400/50035), late answers on demand (`slow_answer`).
    Gateway: zlib-stream when requested, privileged intents refused unless enabled (close 4014), bad token
    (4004), intent-filtered MESSAGE_* events. Sharding: one session per shard of IDENTIFY's `shard`, each
    guild's events on shard (guild_id >> 22) % count and DMs on shard 0, invalid shard (4010), too many
    guilds for one session (4011, `max_guilds_per_shard`); `add_guild(shard=(id, count))` picks the id.
    Message Content intent, as Discord applies it: `privileged_intents` are the portal's toggles (they set
    `flags` of GET /applications/@me). Others' messages that neither mention the bot nor are in DMs arrive
    with content, embeds, attachments and components blank: on the gateway (MESSAGE_CREATE/UPDATE and their
    `referenced_message`) unless the session asked for the intent, over REST (message fetches and lists)
    unless the application has it toggled on.

Known gaps
    No threads, voice, stickers, polls beyond storage, autocomplete driving, member chunking, presence,
    audit-log reasons, per-route rate-limit buckets beyond on-demand 429s, the IDENTIFY rate limit
    (max_concurrency), sessions of two shard counts at once, application emojis,
    entitlements (always empty), webhooks other than interaction webhooks, attachment uploads via
    pre-signed `attachments` upload URLs. `enforce_message_content_intent=False` turns the message-content
    blanking off (for tests about something else). CDN signatures are checked but never rotated.
"""

from . import payloads
from .fake import FakeDiscord
from .interactions import Interaction
from .model import (
    Attachment,
    CallbackRecord,
    Channel,
    Guild,
    Member,
    Message,
    MessageRevision,
    RequestRecord,
    Role,
    StoredCommand,
    User,
)
from .util import FLAG_EPHEMERAL, FLAG_IS_COMPONENTS_V2, FLAG_LOADING, MIB, PERMISSIONS, permission_bits

__all__ = [
    "FLAG_EPHEMERAL",
    "FLAG_IS_COMPONENTS_V2",
    "FLAG_LOADING",
    "MIB",
    "PERMISSIONS",
    "Attachment",
    "CallbackRecord",
    "Channel",
    "FakeDiscord",
    "Guild",
    "Interaction",
    "Member",
    "Message",
    "MessageRevision",
    "RequestRecord",
    "Role",
    "StoredCommand",
    "User",
    "payloads",
    "permission_bits",
]
