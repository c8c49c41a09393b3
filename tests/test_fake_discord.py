"""Proves the loopback fake Discord with real discord.py bots: one in a subprocess patched by
tests/fakes/discord_patch/sitecustomize.py (as the real bot will run), one in-process."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import discord
import pytest
import yarl
from discord import app_commands

from tests.fakes.fake_discord import FLAG_EPHEMERAL, FakeDiscord, payloads, permission_bits
from tests.support.builders import png

DEMO_BOT = Path(__file__).parent / "fakes" / "fake_discord" / "demo_bot.py"
PRIVILEGED = (1 << 1) | (1 << 8) | (1 << 15)
Seen = asyncio.Queue[discord.Message]


# Subprocess bot -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDiscord]:
    fake = FakeDiscord()
    with fake.threaded():
        proc = subprocess.Popen(
            [sys.executable, "-P", str(DEMO_BOT)],
            env=fake.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            fake.wait_until_ready(30)
            fake.wait_for_commands("video", "probe", timeout=30)
            yield fake
        finally:
            proc.terminate()
            output, _ = proc.communicate(timeout=15)
            if "Traceback" in output:
                print(output[-5000:])  # visible with -rA / on failure


def test_login_sync_and_intents(fake: FakeDiscord) -> None:
    video = fake.commands["video"]
    prompt = video.option("prompt")
    assert prompt["type"] == 3
    assert prompt["required"]
    assert prompt["max_length"] == 2000
    assert video.option("image")["type"] == 11
    assert fake.command_syncs == 1
    assert fake.intents is not None
    assert fake.intents & PRIVILEGED == 0
    assert fake.gateway.log[0].detail["query"].get("compress") == "zlib-stream"
    first = fake.requests[0]
    assert (first.method, first.path, first.status) == ("GET", "/users/@me", 200)
    assert not fake.requests_matching(status=401)
    assert fake.unknown_routes == []
    assert fake.internal_errors == []


def test_slash_with_image_edits_original(fake: FakeDiscord) -> None:
    image = png()
    inter = fake.slash(
        "video", {"prompt": "a cat surfing"}, attachments={"image": ("cat.png", image, "image/png")}
    )
    resolved = next(iter(inter.payload["data"]["resolved"]["attachments"].values()))
    assert (resolved["width"], resolved["height"], resolved["size"]) == (640, 480, len(image))
    response = inter.wait_response(timeout=3)
    assert response.type == 4
    assert not response.ephemeral
    assert inter.response_time is not None
    assert inter.response_time < 3
    card = inter.wait_original(lambda m: "done" in m.text, timeout=10)
    assert card.type == 20
    assert card.interaction_metadata["user"]["id"] == str(fake.member.id)
    states = [rev.embeds[0]["fields"][0]["value"] for rev in card.history]
    assert states == ["queued", "queued at Novita", "generating 50%", "uploading", "done"]
    assert card.edited_at is not None
    (result,) = card.attachments
    assert result.data == image
    assert result.content_type == "image/png"
    with urllib.request.urlopen(result.url, timeout=5) as resp:  # noqa: S310 - the fake's loopback CDN
        assert resp.read() == image


def test_channel_upload_and_size_limit(fake: FakeDiscord) -> None:
    inter = fake.slash("probe", {"action": "upload"})
    assert inter.wait_response().type == 5
    note = inter.wait_original(lambda m: m.content.startswith("uploaded"), timeout=10)
    assert note.ephemeral
    assert note.flags & FLAG_EPHEMERAL
    message = fake.message(note.content.split()[1])
    assert note.content.split()[2] == "2048"
    (clip,) = message.attachments
    assert (clip.filename, clip.size, fake.cdn_bytes(clip.url)) == ("clip.mp4", 2048, b"\x00\x01" * 1024)

    big = fake.slash("probe", {"action": "toolarge"})
    answer = big.wait_original(lambda m: m.content.startswith("toolarge"), timeout=20)
    assert answer.content == "toolarge: 413 40005"
    (rejected,) = fake.requests_matching("POST", f"/channels/{fake.channel.id}/messages", status=413)
    assert rejected.files[0].size == 10 * 1024 * 1024 + 1


def test_denied_channel(fake: FakeDiscord) -> None:
    locked = fake.add_channel(fake.guild, "locked")
    fake.deny(locked, "send_messages")
    hidden = fake.add_channel(fake.guild, "hidden")
    fake.deny(hidden, "view_channel")
    inter = fake.slash("probe", {"action": "denied", "channel": locked})
    assert inter.wait_response().content == "denied: 403 50013"
    inter = fake.slash("probe", {"action": "denied", "channel": hidden})
    assert inter.wait_response().content == "denied: 403 50001"
    assert fake.messages(locked) == []
    assert fake.messages(hidden) == []


def test_mention_reply(fake: FakeDiscord) -> None:
    photo = fake.post_message(fake.channel, fake.moderator, "look", attachments=[("pic.png", png(400, 400))])
    asked = fake.post_message(
        fake.channel, fake.member, "animate this", mentions=[fake.bot_user], reference=photo
    )
    reply = fake.wait_for_message(lambda m: m.content.startswith("pong"), after=asked)
    # The demo bot has no message-content intent: the moderator's message arrives blank, as on Discord.
    assert reply.content == "pong: animate this (replying to 0 attachment(s))"
    assert reply.message_reference is not None
    assert reply.message_reference["message_id"] == str(asked.id)
    assert reply.type == 19
    assert [u.id for u in reply.mentions] == [fake.member.id]


def test_survives_forced_disconnect(fake: FakeDiscord) -> None:
    fake.disconnect_gateway(code=4000)
    queued = fake.post_message(fake.channel, fake.member, "are you there", mentions=[fake.bot_user])
    fake.wait_for_resume(timeout=15)
    assert fake.wait_for_message(lambda m: "are you there" in m.content, after=queued).content.startswith(
        "pong"
    )
    inter = fake.slash("probe", {"action": "ping"})
    response = inter.wait_response()
    assert response.ephemeral
    assert response.content.startswith("pong")
    assert int(response.content.split()[1]) & permission_bits("send_messages", "attach_files")
    assert len(fake.gateway.identify_payloads) == 1  # resumed, not re-identified


def test_edit_after_token_lifetime(fake: FakeDiscord) -> None:
    fake.token_lifetime = 1.0
    try:
        inter = fake.slash("probe", {"action": "late", "delay": 1.5})
        assert inter.wait_response().content == "working"
        note = fake.wait_for_message(lambda m: m.content.startswith("late edit"), timeout=10)
    finally:
        fake.token_lifetime = 15 * 60.0
    assert note.content == "late edit: 401 50027"
    assert inter.original_message().content == "working"


def test_sitecustomize_is_inert_without_the_env_var(fake: FakeDiscord) -> None:
    code = (
        "import discord.http, discord.gateway;"
        "print(discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)"
    )
    env = fake.env()
    plain = {k: v for k, v in env.items() if k != "HAILUO_FAKE_DISCORD_URL"}
    out = subprocess.run([sys.executable, "-c", code], env=plain, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["https://discord.com/api/v10", "wss://gateway.discord.gg/"]
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [fake.api_url, fake.gateway_url + "/"]


# In-process bot --------------------------------------------------------------------------------------------
class AskModal(discord.ui.Modal, title="Animate image"):
    prompt = discord.ui.Label(
        text="Prompt", component=discord.ui.TextInput(custom_id="prompt", max_length=100)
    )
    duration = discord.ui.TextInput(label="Duration", custom_id="duration", required=False, default="6")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        assert isinstance(self.prompt.component, discord.ui.TextInput)
        await interaction.response.send_message(f"got {self.prompt.component.value} / {self.duration.value}")


class Buttons(discord.ui.View):
    @discord.ui.button(label="Regenerate", custom_id="regen")
    async def regen(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(content="regenerating", view=None)
        assert isinstance(interaction.channel, discord.TextChannel)
        await interaction.channel.send("after click")


def in_process_client() -> discord.Client:
    intents = discord.Intents.default()
    intents.message_content = False
    client = discord.Client(intents=intents)
    tree = app_commands.CommandTree(client)

    @tree.command(name="ask", description="Open a modal")
    async def ask(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(AskModal())

    @tree.command(name="menu", description="Show buttons")
    async def menu(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pick", view=Buttons())

    @tree.command(name="slow", description="Answer too late")
    async def slow(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.6)
        try:
            await interaction.response.send_message("too late?")
        except discord.HTTPException as exc:
            assert isinstance(interaction.channel, discord.TextChannel)
            await interaction.channel.send(f"slow: {exc.status} {exc.code}")

    @tree.command(name="dmme", description="DM the caller")
    async def dmme(interaction: discord.Interaction) -> None:
        try:
            await interaction.user.send("a private hello")
            result = "sent"
        except discord.HTTPException as exc:
            result = f"{exc.status} {exc.code}"
        await interaction.response.send_message(f"dm: {result}", ephemeral=True)

    @tree.command(name="csv", description="Answer with a file")
    async def csv(interaction: discord.Interaction) -> None:
        table = discord.File(io.BytesIO(b"a,b\n1,2\n"), "usage.csv")
        await interaction.response.send_message("usage", file=table)
        extra = discord.File(io.BytesIO(b"x" * 10), "more.txt")
        await interaction.followup.send("more", file=extra, ephemeral=True)

    @tree.context_menu(name="Inspect")
    async def inspect(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.send_message(f"{len(message.attachments)} attachment(s)", ephemeral=True)

    async def setup_hook() -> None:
        await tree.sync()

    client.setup_hook = setup_hook  # type: ignore[method-assign]
    return client


async def test_in_process_bot(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeDiscord() as fake:
        monkeypatch.setattr(discord.http.Route, "BASE", fake.api_url)
        monkeypatch.setattr(
            discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url + "/")
        )

        stranger = discord.Client(intents=discord.Intents.none())
        with pytest.raises(discord.LoginFailure):
            await stranger.login("not-the-token")
        await stranger.close()
        greedy = discord.Client(intents=discord.Intents.all())
        with pytest.raises(discord.PrivilegedIntentsRequired):
            await greedy.start(fake.token)
        await greedy.close()

        client = in_process_client()
        task = asyncio.create_task(client.start(fake.token))
        try:
            await fake.wait_until_ready(15)
            await fake.wait_for_commands("ask", "menu", "slow", "Inspect")

            opened = fake.slash("ask")
            assert (await opened.wait_response()).type == 9
            with pytest.raises(ValueError, match="max_length"):
                fake.submit_modal(opened, {"prompt": "x" * 101})
            submitted = fake.submit_modal(opened, {"prompt": "a dancing robot"})
            assert (await submitted.wait_response()).content == "got a dancing robot / 6"

            fake.rate_limit("POST /channels/*/messages", times=1, retry_after=0.3)
            shown = fake.slash("menu")
            await shown.wait_response()
            card = shown.original_message()
            assert card is not None
            assert card.custom_ids() == ["regen"]
            clicked = fake.click(card, "regen", user=fake.moderator)
            assert (await clicked.wait_response()).type == 7
            assert card.content == "regenerating"
            assert card.components == []
            after = await fake.wait_for_message(lambda m: m.content == "after click")
            limited, ok = fake.requests_matching("POST", f"/channels/{fake.channel.id}/messages")
            assert (limited.status, ok.status) == (429, 200)
            assert ok.at - limited.at >= 0.3
            assert after.channel_id == fake.channel.id

            photo = fake.post_message(None, fake.member, "pic", attachments=[("a.webp", png(), "image/png")])
            menu_use = fake.context_menu("Inspect", photo)
            assert (await menu_use.wait_response()).content == "1 attachment(s)"

            csv = fake.slash("csv")
            answered = await csv.wait_response()
            assert [(f.filename, f.size) for f in answered.files] == [("usage.csv", 8)]
            more = await csv.wait_followup(index=0)
            assert more.ephemeral
            assert more.attachments[0].data == b"x" * 10
            assert more.interaction_metadata["original_response_message_id"] == str(csv.original_message_id)
            original = csv.original_message()
            assert original is not None
            assert original.attachments[0].data == b"a,b\n1,2\n"

            assert (await fake.slash("dmme").wait_response()).content == "dm: sent"
            assert [m.content for m in fake.dm_messages(fake.member)] == ["a private hello"]
            fake.refuse_dms(fake.member)
            assert (await fake.slash("dmme").wait_response()).content == "dm: 403 50007"

            fake.response_window = 0.3
            late = fake.slash("slow")
            note = await fake.wait_for_message(lambda m: m.content.startswith("slow:"))
            assert note.content == "slow: 404 10062"
            assert late.response is None
            assert late.rejected[0].error_code == 10062

            async with aiohttp.ClientSession() as http:  # a second initial response is refused
                url = f"{fake.api_url}/interactions/{submitted.id}/{submitted.token}/callback"
                async with http.post(url, json={"type": 4, "data": {"content": "again"}}) as resp:
                    assert resp.status == 400
                    assert (await resp.json())["code"] == 40060
            fake.response_window = 3.0
            fake.disconnect_gateway(code=4000, resumable=False)  # RESUME -> INVALID_SESSION -> IDENTIFY
            await fake.wait_for(
                lambda: len(fake.gateway.identify_payloads) == 2 and fake.gateway.connected, 20
            )
            assert [e.kind for e in fake.gateway.log].count("invalid_session") == 1
            again = fake.slash("ask")
            assert (await again.wait_response()).type == 9
            assert fake.unknown_routes == []
            assert fake.internal_errors == []
        finally:
            await client.close()
            await asyncio.wait_for(task, 10)


def test_world_defaults() -> None:
    fake = FakeDiscord()
    assert fake.guild.upload_limit == 10 * 1024 * 1024
    fake.set_premium_tier(fake.guild, 2)
    assert fake.guild.upload_limit == 50 * 1024 * 1024
    mod_perms = fake.guild.permissions_in(fake.channel, fake.moderator.id)
    assert mod_perms & permission_bits("manage_guild")
    assert not fake.guild.permissions_in(fake.channel, fake.member.id) & permission_bits("manage_guild")
    assert fake.token.count(".") == 2


def test_message_content_intent_stripping() -> None:
    fake = FakeDiscord()
    plain = fake.post_message(None, fake.member, "secret words", attachments=[("a.png", png(), "image/png")])
    mention = fake.post_message(None, fake.member, "hey", mentions=[fake.bot_user], reference=plain)
    dm = fake.world.create_message(fake.world.dm_channel_for(fake.member), fake.member, content="in private")
    no_content = 1 << 9  # GUILD_MESSAGES only
    blank = payloads.message(fake.world, plain, gateway=True, intents=no_content)
    assert (blank["content"], blank["attachments"], blank["embeds"]) == ("", [], [])
    shown = payloads.message(fake.world, mention, gateway=True, intents=no_content)
    assert shown["content"].endswith("hey")
    assert shown["referenced_message"]["attachments"] == []  # the replied-to message stays blank
    assert payloads.message(fake.world, dm, intents=no_content)["content"] == "in private"
    whole = payloads.message(fake.world, mention, gateway=True, intents=no_content | 1 << 15)
    assert whole["referenced_message"]["attachments"][0]["filename"] == "a.png"


async def test_the_message_content_intent_is_applied_as_discord_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the portal's toggle: asking for the intent closes the gateway with 4014, /applications/@me
    has no message-content flag, and others' messages arrive blank on the gateway and over REST (the bot's
    own and those mentioning it whole). With the toggle: a session that asks sees everything, one that
    doesn't still gets blank gateway events, and REST shows everything either way."""
    content_flags = (1 << 18) | (1 << 19)  # GATEWAY_MESSAGE_CONTENT, GATEWAY_MESSAGE_CONTENT_LIMITED

    async def connect(fake: FakeDiscord, *, ask: bool) -> tuple[discord.Client, asyncio.Task[None], Seen]:
        intents = discord.Intents.default()
        intents.message_content = ask
        client = discord.Client(intents=intents)
        seen: Seen = asyncio.Queue()

        @client.event
        async def on_message(message: discord.Message) -> None:
            await seen.put(message)

        task = asyncio.create_task(client.start(fake.token))
        await fake.wait_until_ready(15)
        return client, task, seen

    async def flags(fake: FakeDiscord) -> int:
        async with aiohttp.ClientSession() as http:
            auth = {"Authorization": f"Bot {fake.token}"}
            async with http.get(f"{fake.api_url}/applications/@me", headers=auth) as resp:
                return int((await resp.json())["flags"])

    for toggled in (False, True):
        async with FakeDiscord(privileged_intents=["message_content"] if toggled else []) as fake:
            monkeypatch.setattr(discord.http.Route, "BASE", fake.api_url)
            monkeypatch.setattr(
                discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url + "/")
            )
            assert bool(await flags(fake) & content_flags) is toggled
            if not toggled:
                greedy = discord.Client(intents=discord.Intents(guilds=True, message_content=True))
                with pytest.raises(discord.PrivilegedIntentsRequired):
                    await greedy.start(fake.token)
                await greedy.close()
                assert [e.detail["code"] for e in fake.gateway.log if e.kind == "closed"] == [4014]
            for ask in (False, True) if toggled else (False,):
                client, task, seen = await connect(fake, ask=ask)
                try:
                    photo = fake.post_message(
                        None, fake.member, "look", attachments=[("a.png", png(), "image/png")]
                    )
                    got = await asyncio.wait_for(seen.get(), 10)
                    assert (got.content, len(got.attachments)) == (("look", 1) if ask else ("", 0))
                    reply = fake.post_message(
                        None, fake.owner, "this one", mentions=[fake.bot_user], reference=photo
                    )
                    got = await asyncio.wait_for(seen.get(), 10)
                    assert got.content.endswith("this one")  # a mention is always readable
                    assert got.reference is not None
                    assert isinstance(got.reference.resolved, discord.Message)
                    assert len(got.reference.resolved.attachments) == (1 if ask else 0)
                    channel = client.get_channel(fake.channel.id)
                    assert isinstance(channel, discord.TextChannel)
                    fetched = await channel.fetch_message(photo.id)
                    expected = ("look", 1) if toggled else ("", 0)
                    assert (fetched.content, len(fetched.attachments)) == expected
                    assert (await channel.fetch_message(reply.id)).content.endswith("this one")
                    own = await channel.send("mine", file=discord.File(io.BytesIO(png()), "b.png"))
                    assert len((await channel.fetch_message(own.id)).attachments) == 1
                    history = [m async for m in channel.history(limit=3)]
                    assert [len(m.attachments) for m in history] == [1, 0, 1 if toggled else 0]
                finally:
                    await client.close()
                    await asyncio.wait_for(task, 10)
            assert fake.internal_errors == []


async def test_rest_errors_raw() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as http:
        auth = {"Authorization": f"Bot {fake.token}"}
        url = f"{fake.api_url}/channels/{fake.channel.id}/messages"
        async with http.post(url, json={"content": "x" * 2001}, headers=auth) as resp:
            body = await resp.json()
            assert resp.status == 400
            assert body["code"] == 50035
            assert "content" in body["errors"]
        async with http.post(url, json={"content": "hi"}) as resp:
            assert resp.status == 401
        async with http.post(url, json={}, headers=auth) as resp:
            assert resp.status == 400
            assert (await resp.json())["code"] == 50006
        form = aiohttp.FormData(quote_fields=False)
        form.add_field("payload_json", '{"content": "file", "attachments": [{"id": 0, "filename": "a.txt"}]}')
        form.add_field("files[0]", b"abc", filename="a.txt", content_type="text/plain")
        async with http.post(url, data=form, headers=auth) as resp:
            sent = await resp.json()
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/json"
        async with http.get(sent["attachments"][0]["url"]) as resp:
            assert await resp.read() == b"abc"
        fake.expire_links()
        async with http.get(fake.message(sent["id"]).attachments[0].url) as resp:
            assert resp.status == 404
        msg_url = f"{url}/{sent['id']}"
        async with http.delete(msg_url, headers=auth) as resp:
            assert resp.status == 204
        async with http.get(msg_url, headers=auth) as resp:
            assert resp.status == 404
            assert (await resp.json())["code"] == 10008
        fake.delete_channel(fake.channel)
        async with http.post(url, json={"content": "hi"}, headers=auth) as resp:
            assert resp.status == 404
            assert (await resp.json())["code"] == 10003
        async with http.get(f"{fake.api_url}/nothing/here", headers=auth) as resp:
            assert resp.status == 404
            assert (await resp.json()) == {"message": "404: Not Found", "code": 0}
        assert [r.path for r in fake.unknown_routes] == ["/nothing/here"]
        bad = [{"name": "Video", "description": "x", "type": 1}]
        async with http.put(
            f"{fake.api_url}/applications/{fake.application_id}/commands", json=bad, headers=auth
        ) as resp:
            body = await resp.json()
            assert resp.status == 400
            assert body["code"] == 50035
            assert "name" in body["errors"]["0"]


async def test_a_nonce_with_enforce_nonce_makes_one_message_as_discord_does() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as http:
        auth = {"Authorization": f"Bot {fake.token}"}
        url = f"{fake.api_url}/channels/{fake.channel.id}/messages"
        ids = []
        for _ in range(2):
            async with http.post(
                url, json={"content": "v", "nonce": "n-1", "enforce_nonce": True}, headers=auth
            ) as r:
                assert r.status == 200
                ids.append((await r.json())["id"])
        assert ids[0] == ids[1]
        async with http.post(url, json={"content": "v", "nonce": "n-1"}, headers=auth) as resp:
            assert (await resp.json())["id"] != ids[0]  # without enforce_nonce the nonce is only echoed
        fake.world.nonce_window = 0
        async with http.post(
            url, json={"content": "v", "nonce": "n-1", "enforce_nonce": True}, headers=auth
        ) as r:
            assert (await r.json())["id"] != ids[0]  # "the past few minutes" are over
        async with http.post(url, json={"content": "v", "nonce": "n" * 26}, headers=auth) as resp:
            assert resp.status == 400
            assert (await resp.json())["code"] == 50035
        assert len(fake.bot_messages()) == 3


async def test_a_slow_answer_is_carried_out_before_it_arrives() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as http:
        auth = {"Authorization": f"Bot {fake.token}"}
        url = f"{fake.api_url}/channels/{fake.channel.id}/messages"
        fake.slow_answer("POST /channels/*/messages", seconds=600)
        post = asyncio.create_task(http.post(url, json={"content": "late"}, headers=auth))
        message = await fake.wait_for_message(lambda m: m.content == "late", timeout=10)
        assert message.author.bot
        assert not post.done()  # made, but the answer is still held back
        post.cancel()


# Sharding ---------------------------------------------------------------------------------------------------
GUILD_MESSAGES, DIRECT_MESSAGES = 1 << 9, 1 << 12


async def identify(
    http: aiohttp.ClientSession, fake: FakeDiscord, shard: list[int] | None
) -> aiohttp.ClientWebSocketResponse:
    """A raw gateway connection: HELLO, then IDENTIFY (with `shard` when given) as discord.py sends it."""
    ws = await http.ws_connect(fake.gateway_url)
    assert (await ws.receive_json(timeout=5))["op"] == 10
    data: dict[str, object] = {
        "token": fake.token,
        "intents": GUILD_MESSAGES | DIRECT_MESSAGES,
        "properties": {"os": "linux", "browser": "test", "device": "test"},
    }
    if shard is not None:
        data["shard"] = shard
    await ws.send_json({"op": 2, "d": data})
    return ws


async def ready_and_guilds(ws: aiohttp.ClientWebSocketResponse) -> tuple[dict, list[int]]:
    """READY and the GUILD_CREATEs that follow it (one per guild READY lists as unavailable)."""
    ready = await ws.receive_json(timeout=5)
    assert ready["t"] == "READY"
    created = [await ws.receive_json(timeout=5) for _ in ready["d"]["guilds"]]
    assert {f["t"] for f in created} <= {"GUILD_CREATE"}
    return ready["d"], [int(f["d"]["id"]) for f in created]


def received(fake: FakeDiscord, shard: int, event: str) -> list[dict]:
    """What the current session of `shard` was sent, as the fake recorded it for replay."""
    return [frame["d"] for _, frame in fake.gateway.shards[shard].events if frame["t"] == event]


async def test_each_shard_gets_only_its_guilds_and_their_events() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as http:
        zero = [fake.add_guild(f"zero {n}", shard=(0, 2)) for n in range(2)]
        one = fake.add_guild("one", shard=(1, 2))
        for guild in (*zero, one):
            fake.add_member(guild, fake.member)
        default_shard = fake.shard_of(fake.guild, 2)
        ws0 = await identify(http, fake, [0, 2])
        ws1 = await identify(http, fake, [1, 2])
        try:
            ready0, guilds0 = await ready_and_guilds(ws0)
            ready1, guilds1 = await ready_and_guilds(ws1)
            assert (ready0["shard"], ready1["shard"]) == ([0, 2], [1, 2])
            expected = {0: {g.id for g in zero}, 1: {one.id}}
            expected[default_shard].add(fake.guild.id)
            assert (set(guilds0), set(guilds1)) == (expected[0], expected[1])
            assert fake.gateway.live_shards(0, 2) == {0, 1}

            in_one = fake.post_message(one.channel_named("general"), fake.member, "hello shard one")
            assert (await ws1.receive_json(timeout=5))["d"]["id"] == str(in_one.id)
            in_zero = fake.post_message(zero[1].channel_named("general"), fake.member, "hello shard zero")
            assert (await ws0.receive_json(timeout=5))["d"]["id"] == str(in_zero.id)
            dm = fake.post_message(fake.world.dm_channel_for(fake.member), fake.member, "a DM")
            assert (await ws0.receive_json(timeout=5))["d"]["id"] == str(dm.id)  # DMs: shard 0
            assert [m["id"] for m in received(fake, 1, "MESSAGE_CREATE")] == [str(in_one.id)]
            assert [m["id"] for m in received(fake, 0, "MESSAGE_CREATE")] == [str(in_zero.id), str(dm.id)]

            later = fake.add_guild("later", shard=(1, 2))
            assert [g["id"] for g in received(fake, 1, "GUILD_CREATE")][-1] == str(later.id)
            assert str(later.id) not in [g["id"] for g in received(fake, 0, "GUILD_CREATE")]
        finally:
            await ws0.close()
            await ws1.close()


async def test_interactions_go_to_the_shard_of_their_guild() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as http:
        one = fake.add_guild("one", shard=(1, 2))
        fake.add_member(one, fake.member)
        url = f"{fake.api_url}/applications/{fake.application_id}/commands"
        command = {"name": "ping", "description": "ping", "type": 1}
        headers = {"Authorization": f"Bot {fake.token}"}
        async with http.put(url, json=[command], headers=headers) as resp:
            assert resp.status == 200
        ws0 = await identify(http, fake, [0, 2])
        await ready_and_guilds(ws0)
        with pytest.raises(RuntimeError, match="no gateway session for shard 1 of 2"):
            fake.slash("ping", guild=one)  # nobody connected shard 1: Discord could not deliver it
        ws1 = await identify(http, fake, [1, 2])
        try:
            await ready_and_guilds(ws1)
            in_one = fake.slash("ping", guild=one)
            in_dm = fake.slash("ping", dm=True)
            assert [i["id"] for i in received(fake, 1, "INTERACTION_CREATE")] == [str(in_one.id)]
            assert [i["id"] for i in received(fake, 0, "INTERACTION_CREATE")] == [str(in_dm.id)]
        finally:
            await ws0.close()
            await ws1.close()


async def test_a_second_identify_replaces_that_shards_session_only() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as http:
        one = fake.add_guild("one", shard=(1, 2))
        ws0 = await identify(http, fake, [0, 2])
        ws1 = await identify(http, fake, [1, 2])
        await ready_and_guilds(ws0)
        await ready_and_guilds(ws1)
        shard0, old1 = fake.gateway.shards[0], fake.gateway.shards[1]
        ws1_new = await identify(http, fake, [1, 2])
        try:
            await ready_and_guilds(ws1_new)
            assert old1.invalidated
            assert fake.gateway.shards[0] is shard0
            assert not shard0.invalidated
            assert fake.gateway.live_shards(since=2) == {1}  # the third IDENTIFY's session
            fake.post_message(one.channel_named("general"), fake.member, "to the new session")
            assert (await ws1_new.receive_json(timeout=5))["t"] == "MESSAGE_CREATE"
            assert not [e for _, e in old1.events if e["t"] == "MESSAGE_CREATE"]

            await ws1.send_json(  # the old session cannot be resumed
                {"op": 6, "d": {"token": fake.token, "session_id": old1.id, "seq": old1.seq}}
            )
            assert (await ws1.receive_json(timeout=5)) == {"op": 9, "d": False}

            unsharded = await identify(http, fake, None)  # another shard count: a new layout
            await ready_and_guilds(unsharded)
            assert shard0.invalidated
            assert fake.gateway.shard_count == 1
            await unsharded.close()
        finally:
            for ws in (ws0, ws1, ws1_new):
                await ws.close()


@pytest.mark.parametrize("shard", [[2, 2], [-1, 2], [0, 0], [0], "0,2"])
async def test_an_invalid_shard_is_refused_with_4010(shard: object) -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as http:
        ws = await identify(http, fake, shard)  # type: ignore[arg-type]
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 4010
        assert fake.gateway.identify_payloads == []


async def test_too_many_guilds_for_one_session_needs_sharding_and_gateway_bot_says_how_many() -> None:
    async with FakeDiscord(max_guilds_per_shard=2) as fake, aiohttp.ClientSession() as http:
        fake.add_guild("zero", shard=(0, 2))
        fake.add_guild("one", shard=(1, 2))
        ws = await identify(http, fake, None)  # three guilds on one session
        await ws.receive(timeout=5)
        assert ws.close_code == 4011
        ws0 = await identify(http, fake, [0, 2])
        ws1 = await identify(http, fake, [1, 2])
        await ready_and_guilds(ws0)
        await ready_and_guilds(ws1)
        await ws0.close()
        await ws1.close()
        headers = {"Authorization": f"Bot {fake.token}"}
        async with http.get(f"{fake.api_url}/gateway/bot", headers=headers) as resp:
            assert (await resp.json())["shards"] == 1
        for n in range(1000):
            fake.add_guild(f"more {n}", channels=())
        async with http.get(f"{fake.api_url}/gateway/bot", headers=headers) as resp:
            assert (await resp.json())["shards"] == 2  # one per 1,000 guilds, as Discord advises
