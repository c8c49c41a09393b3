"""`python -m bot check --online`: are the Discord token and the Novita key accepted? Nothing is generated.

- Discord: GET /users/@me through discord.py's own HTTP client (what the bot does when it logs in), then
  GET /applications/@me, whose `flags` say whether the application has the Message Content intent
  (GATEWAY_MESSAGE_CONTENT for verified bots, GATEWAY_MESSAGE_CONTENT_LIMITED for the portal's toggle).
  MESSAGE_CONTENT_INTENT=true without it is a problem: Discord would refuse the start (close code 4014).
- Novita: GET task-result for a task id that cannot exist. The key is checked before the task is looked up,
  so 401 means a wrong key and 404 (or 400) means the key is fine; no task is created and nothing is charged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
import discord

from ..core.novita import (
    NovitaAuthError,
    NovitaBadRequest,
    NovitaClient,
    NovitaConnectionError,
    NovitaError,
    NovitaForbidden,
    NovitaMalformedResponse,
    NovitaNoBalance,
    NovitaNotFound,
    NovitaRateLimited,
    NovitaServerError,
    NovitaTimeout,
)
from ..core.settings import HELP, Settings

PROBE_TASK_ID = "hailuo-bot-key-check-00000000"


@dataclass(frozen=True)
class Outcome:
    service: str  # "discord" | "intent" | "novita"
    ok: bool
    message: str


async def check_discord(token: str, timeout: float = 20.0) -> Outcome:  # noqa: ASYNC109 - a plain limit
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    try:
        async with asyncio.timeout(timeout):
            data = await http.static_login(token.strip())
    except discord.LoginFailure:
        return Outcome("discord", False, "Discord refused DISCORD_TOKEN (401). " + HELP["DISCORD_TOKEN"])
    except discord.HTTPException as exc:
        return Outcome("discord", False, f"Discord answered HTTP {exc.status} to the token check: {exc.text}")
    except TimeoutError:
        return Outcome("discord", False, f"Discord did not answer within {timeout:g} s.")
    except (aiohttp.ClientError, OSError) as exc:
        return Outcome("discord", False, f"Could not reach Discord: {exc}. Check the network and firewall.")
    finally:
        await http.close()
    name = data.get("username", "?")
    if data.get("discriminator") not in (None, "0", "0000"):
        name = f"{name}#{data['discriminator']}"
    if not data.get("bot"):
        return Outcome("discord", False, f"DISCORD_TOKEN belongs to {name}, which is not a bot account.")
    return Outcome("discord", True, f"token accepted: logged in as {name} (id {data.get('id')})")


async def check_message_content_intent(
    token: str,
    wanted: bool,
    timeout: float = 20.0,  # noqa: ASYNC109 - a plain limit
) -> Outcome:
    """Does the application have the Message Content intent, and does that match MESSAGE_CONTENT_INTENT?"""
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    try:
        async with asyncio.timeout(timeout):
            await http.static_login(token.strip())
            data = await http.request(discord.http.Route("GET", "/applications/@me"))
    except (discord.HTTPException, TimeoutError, aiohttp.ClientError, OSError) as exc:
        status = f"HTTP {exc.status}" if isinstance(exc, discord.HTTPException) else type(exc).__name__
        return Outcome(
            "intent",
            not wanted,
            f"could not read the application from Discord ({status}) to see whether it has the Message "
            "Content intent.",
        )
    finally:
        await http.close()
    flags = discord.ApplicationFlags._from_value(int(data.get("flags") or 0))
    granted = flags.gateway_message_content or flags.gateway_message_content_limited
    if wanted and not granted:
        return Outcome(
            "intent",
            False,
            "MESSAGE_CONTENT_INTENT=true, but the application doesn't have the Message Content intent, so "
            "Discord would refuse the start. " + HELP["MESSAGE_CONTENT_INTENT"],
        )
    if wanted:
        return Outcome(
            "intent", True, "Message Content intent granted and asked for: mentions may reply to any image"
        )
    state = "granted but not asked for" if granted else "not granted"
    return Outcome(
        "intent",
        True,
        f"Message Content intent {state} (MESSAGE_CONTENT_INTENT=false): a mention replying to another "
        "member's image is pointed to Animate image",
    )


async def check_novita(
    session: aiohttp.ClientSession,
    base_url: str,
    api_key: str,
    timeout: float = 20.0,  # noqa: ASYNC109 - a plain limit handed to the client
) -> Outcome:
    client = NovitaClient(
        session, base_url=base_url, api_key=api_key, request_timeout=timeout, poll_retries=0
    )
    try:
        await client.get_result(PROBE_TASK_ID)
    except (NovitaNotFound, NovitaBadRequest):
        return Outcome("novita", True, f"key accepted by {base_url}")
    except NovitaAuthError as exc:
        return Outcome(
            "novita", False, f"Novita refused NOVITA_API_KEY (HTTP {exc.status}). " + HELP["NOVITA_API_KEY"]
        )
    except NovitaNoBalance:
        return Outcome(
            "novita", False, "The key works but the Novita account has no balance: top it up at novita.ai."
        )
    except NovitaForbidden as exc:
        return Outcome(
            "novita", False, f"Novita accepted the key but refused access (HTTP 403): {exc.detail}"
        )
    except NovitaRateLimited:
        return Outcome("novita", True, "key not refused (Novita is rate limiting right now; try again later)")
    except (NovitaConnectionError, NovitaTimeout) as exc:
        return Outcome("novita", False, f"Could not reach Novita at {base_url}: {exc.detail}")
    except NovitaServerError as exc:
        return Outcome("novita", False, f"Novita answered HTTP {exc.status}; try again later: {exc.detail}")
    except NovitaMalformedResponse:
        return Outcome("novita", True, f"key accepted by {base_url} (odd answer to the dummy task)")
    except NovitaError as exc:
        return Outcome("novita", False, f"Unexpected answer from Novita: {exc}")
    return Outcome("novita", True, f"key accepted by {base_url}")


async def run_online_checks(settings: Settings) -> list[Outcome]:
    """Both checks, concurrently; a missing secret is reported, not checked."""
    outcomes: list[Outcome] = []
    jobs = []
    if settings.discord_token is None:
        outcomes.append(Outcome("discord", False, "DISCORD_TOKEN is not set. " + HELP["DISCORD_TOKEN"]))
    else:
        jobs.append(check_discord(settings.discord_token.get_secret_value()))
    async with aiohttp.ClientSession() as session:
        if settings.novita_mode == "simulate":
            outcomes.append(Outcome("novita", True, "skipped: NOVITA_MODE=simulate (trial mode)"))
        elif settings.novita_api_key is None:
            outcomes.append(Outcome("novita", False, "NOVITA_API_KEY is not set. " + HELP["NOVITA_API_KEY"]))
        else:
            jobs.append(
                check_novita(session, settings.novita_base_url, settings.novita_api_key.get_secret_value())
            )
        outcomes.extend(await asyncio.gather(*jobs))
    token_ok = any(o.service == "discord" and o.ok for o in outcomes)
    if token_ok and settings.discord_token is not None:
        outcomes.append(
            await check_message_content_intent(
                settings.discord_token.get_secret_value(), settings.message_content_intent
            )
        )
    order = ("discord", "intent", "novita")
    return sorted(outcomes, key=lambda o: order.index(o.service) if o.service in order else len(order))
