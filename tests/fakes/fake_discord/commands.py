"""Application commands: validate what the bot syncs (as Discord does, 400/50035 with the error path),
store them with stable ids, and turn a test's option dict into the typed interaction options."""

from __future__ import annotations

import re
from typing import Any

from .model import StoredCommand
from .util import DiscordHTTPError, invalid_form

CHAT_INPUT, USER, MESSAGE, PRIMARY_ENTRY_POINT = 1, 2, 3, 4
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER_OPT, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = (
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
)
MAX_PER_TYPE = {CHAT_INPUT: 100, USER: 15, MESSAGE: 15, PRIMARY_ENTRY_POINT: 1}
_NAME = re.compile(r"^[-_'\w]{1,32}$")
LOCALES = frozenset(
    [
        "id",
        "da",
        "de",
        "en-GB",
        "en-US",
        "es-ES",
        "es-419",
        "fr",
        "hr",
        "it",
        "lt",
        "hu",
        "nl",
        "no",
        "pl",
        "pt-BR",
        "ro",
        "fi",
        "sv-SE",
        "vi",
        "tr",
        "cs",
        "el",
        "bg",
        "ru",
        "uk",
        "hi",
        "th",
        "zh-CN",
        "ja",
        "zh-TW",
        "ko",
    ]
)  # Discord's locales: a localization under any other key is refused


def _check_localizations(data: dict[str, Any], key: str, path: str, check: Any) -> None:
    """`name_localizations` / `description_localizations`: a map of Discord locales to values that follow
    the same rules as the field itself (null is allowed and means none)."""
    values = data.get(key)
    if values is None:
        return
    if not isinstance(values, dict):
        raise invalid_form(f"{path}{key}", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    for locale, value in values.items():
        if locale not in LOCALES:
            raise invalid_form(
                f"{path}{key}.{locale}", "BASE_TYPE_CHOICES", f"Value must be one of {sorted(LOCALES)}."
            )
        check(value, f"{path}{key}.{locale}")


def _check_menu_name(name: Any, path: str) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        raise invalid_form(path, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")


def validate_command(data: Any, path: str) -> None:
    if not isinstance(data, dict):
        raise invalid_form(path or "_", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    prefix = f"{path}." if path else ""
    ctype = data.get("type", CHAT_INPUT)
    if ctype not in MAX_PER_TYPE:
        raise invalid_form(f"{prefix}type", "BASE_TYPE_CHOICES", f"Value must be one of {set(MAX_PER_TYPE)}.")
    name = data.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        raise invalid_form(f"{prefix}name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
    if ctype == CHAT_INPUT:
        _check_chat_name(name, f"{prefix}name")
        _check_description(data.get("description"), f"{prefix}description")
        _check_localizations(data, "name_localizations", prefix, _check_chat_name)
        _check_localizations(data, "description_localizations", prefix, _check_description)
        _validate_options(data.get("options") or [], f"{prefix}options", depth=0)
    else:
        _check_localizations(data, "name_localizations", prefix, _check_menu_name)
        if data.get("description"):
            raise invalid_form(
                f"{prefix}description", "APPLICATION_COMMAND_DESCRIPTION_INVALID",
                "Context menu commands cannot have a description",
            )  # fmt: skip
        if data.get("options"):
            raise invalid_form(
                f"{prefix}options",
                "APPLICATION_COMMAND_OPTIONS_INVALID",
                "Context menu commands cannot have options",
            )
    perms = data.get("default_member_permissions")
    if perms is not None and not str(perms).isdigit():
        raise invalid_form(f"{prefix}default_member_permissions", "NUMBER_TYPE_COERCE", "Value is not int.")


def _check_chat_name(name: str, path: str) -> None:
    if not _NAME.match(name) or name != name.lower():
        raise invalid_form(
            path,
            "APPLICATION_COMMAND_INVALID_NAME",
            f"Command name is invalid: {name!r} (lowercase, no spaces)",
        )


def _check_description(desc: Any, path: str) -> None:
    if not isinstance(desc, str) or not 1 <= len(desc) <= 100:
        raise invalid_form(path, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")


def _validate_options(options: Any, path: str, depth: int) -> None:
    if not isinstance(options, list):
        raise invalid_form(path, "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
    if len(options) > 25:
        raise invalid_form(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    names: set[str] = set()
    seen_optional = False
    kinds = {o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in options if isinstance(o, dict)}
    if len(kinds) > 1:
        raise invalid_form(
            path,
            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
            "Sub-command and sub-command group option types are mutually exclusive to all other types",
        )
    for i, opt in enumerate(options):
        p = f"{path}.{i}"
        if not isinstance(opt, dict):
            raise invalid_form(p, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        otype = opt.get("type")
        if otype not in range(1, 12):
            raise invalid_form(f"{p}.type", "BASE_TYPE_CHOICES", "Value must be one of 1..11.")
        name = str(opt.get("name"))
        _check_chat_name(name, f"{p}.name")
        if name in names:
            raise invalid_form(
                f"{p}.name", "APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS", "Option name already exists"
            )
        names.add(name)
        _check_description(opt.get("description"), f"{p}.description")
        _check_localizations(opt, "name_localizations", f"{p}.", _check_chat_name)
        _check_localizations(opt, "description_localizations", f"{p}.", _check_description)
        for j, choice in enumerate(opt.get("choices") or []):
            if isinstance(choice, dict):
                _check_localizations(choice, "name_localizations", f"{p}.choices.{j}.", _check_description)
        if otype in (SUB_COMMAND, SUB_COMMAND_GROUP):
            if (otype == SUB_COMMAND_GROUP and depth > 0) or (otype == SUB_COMMAND and depth > 1):
                raise invalid_form(p, "APPLICATION_COMMAND_OPTIONS_DEPTH", "Sub-commands nested too deeply")
            _validate_options(opt.get("options") or [], f"{p}.options", depth + 1)
            continue
        required = bool(opt.get("required", False))
        if required and seen_optional:
            raise invalid_form(
                f"{p}.required",
                "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                "Required options must be placed before non-required options",
            )
        seen_optional = seen_optional or not required
        _validate_option_constraints(opt, otype, p)


def _validate_option_constraints(opt: dict[str, Any], otype: int, p: str) -> None:
    choices = opt.get("choices")
    if choices is not None:
        if otype not in (STRING, INTEGER, NUMBER):
            raise invalid_form(
                f"{p}.choices", "APPLICATION_COMMAND_OPTION_CHOICES_INVALID", "Choices not allowed"
            )
        if len(choices) > 25:
            raise invalid_form(f"{p}.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        if opt.get("autocomplete"):
            raise invalid_form(
                f"{p}.autocomplete",
                "APPLICATION_COMMAND_AUTOCOMPLETE_INVALID",
                "Autocomplete cannot be used with choices",
            )
        for j, choice in enumerate(choices):
            cname = choice.get("name")
            if not isinstance(cname, str) or not 1 <= len(cname) <= 100:
                raise invalid_form(
                    f"{p}.choices.{j}.name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                )
            value = choice.get("value")
            ok = (
                isinstance(value, str) and len(value) <= 100
                if otype == STRING
                else isinstance(value, int) and not isinstance(value, bool)
                if otype == INTEGER
                else isinstance(value, int | float) and not isinstance(value, bool)
            )
            if not ok:
                raise invalid_form(
                    f"{p}.choices.{j}.value",
                    "BASE_TYPE_CHOICES",
                    "Choice value does not match the option type",
                )
    for key in ("min_length", "max_length"):
        if key in opt:
            if otype != STRING:
                raise invalid_form(
                    f"{p}.{key}", "APPLICATION_COMMAND_OPTION_INVALID", f"{key} is only valid for strings"
                )
            value, low = opt[key], 0 if key == "min_length" else 1
            if not isinstance(value, int) or not low <= value <= 6000:
                raise invalid_form(
                    f"{p}.{key}", "NUMBER_TYPE_MAX", f"int value should be between {low} and 6000."
                )
    if "min_length" in opt and "max_length" in opt and opt["min_length"] > opt["max_length"]:
        raise invalid_form(f"{p}.min_length", "NUMBER_TYPE_MAX", "min_length must be <= max_length")
    for key in ("min_value", "max_value"):
        if key in opt and otype not in (INTEGER, NUMBER):
            raise invalid_form(
                f"{p}.{key}", "APPLICATION_COMMAND_OPTION_INVALID", f"{key} is only valid for numbers"
            )


def normalise_command(
    data: dict[str, Any], cmd_id: int, app_id: int, guild_id: int | None, version: int
) -> dict[str, Any]:
    """The command object as Discord returns it."""
    ctype = data.get("type", CHAT_INPUT)
    out: dict[str, Any] = {
        "id": str(cmd_id),
        "application_id": str(app_id),
        "version": str(version),
        "default_member_permissions": data.get("default_member_permissions"),
        "type": ctype,
        "name": data["name"],
        "name_localizations": data.get("name_localizations"),
        "description": data.get("description", "") if ctype == CHAT_INPUT else "",
        "description_localizations": data.get("description_localizations"),
        "dm_permission": data.get("dm_permission", True),
        "contexts": data.get("contexts"),
        "integration_types": data.get("integration_types") or [0],
        "nsfw": bool(data.get("nsfw", False)),
    }
    if ctype == CHAT_INPUT:
        out["options"] = [_normalise_option(o) for o in data.get("options") or []]
    if guild_id is not None:
        out["guild_id"] = str(guild_id)
    return out


def _normalise_option(opt: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in opt.items() if v is not None}
    if out.get("required") is False:
        out.pop("required")
    if "options" in out:
        out["options"] = [_normalise_option(o) for o in out["options"]]
    return out


def check_limits(commands: list[dict[str, Any]]) -> None:
    counts: dict[int, int] = {}
    seen: set[tuple[int, str]] = set()
    for i, cmd in enumerate(commands):
        ctype = cmd.get("type", CHAT_INPUT)
        counts[ctype] = counts.get(ctype, 0) + 1
        key = (ctype, cmd["name"])
        if key in seen:
            raise invalid_form(
                f"{i}.name",
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                f"Application command names must be unique ({cmd['name']})",
            )
        seen.add(key)
    for ctype, count in counts.items():
        if count > MAX_PER_TYPE[ctype]:
            raise DiscordHTTPError(400, 30032, "Maximum number of application commands reached")


# Building interaction data from a test's option dict --------------------------------------------------------
def find_command(store: dict[int, StoredCommand], name: str, ctype: int) -> StoredCommand | None:
    for cmd in store.values():
        if cmd.name == name and cmd.type == ctype:
            return cmd
    return None


def leaf_schema(cmd: StoredCommand, subcommand: str | None) -> tuple[list[str], list[dict[str, Any]]]:
    """(path of sub-command names, option schemas of the leaf) for `subcommand` ("sub" or "group sub")."""
    options = cmd.payload.get("options") or []
    path = subcommand.split() if subcommand else []
    for part in path:
        match = next(
            (o for o in options if o["name"] == part and o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)), None
        )
        if match is None:
            raise ValueError(f"/{cmd.name} has no sub-command {part!r}")
        options = match.get("options") or []
    if any(o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in options):
        raise ValueError(f"/{cmd.name} needs a sub-command (subcommand=...)")
    return path, options


def coerce_option(schema: dict[str, Any], value: Any, *, strict: bool) -> Any:
    """Check a value the way the Discord client would before sending it, return the wire value."""
    otype = schema["type"]
    name = schema["name"]
    if otype == STRING:
        value = str(value)
        if strict:
            if "max_length" in schema and len(value) > schema["max_length"]:
                raise ValueError(
                    f"option {name}: the Discord client refuses more than {schema['max_length']} chars"
                )
            if len(value) < schema.get("min_length", 0 if not schema.get("required") else 1):
                raise ValueError(
                    f"option {name}: the Discord client needs at least {schema.get('min_length', 1)} chars"
                )
    elif otype == INTEGER:
        if isinstance(value, bool) or int(value) != value:
            raise ValueError(f"option {name}: integer expected, got {value!r}")
        value = int(value)
    elif otype == NUMBER:
        value = float(value)
    elif otype == BOOLEAN and not isinstance(value, bool):
        raise ValueError(f"option {name}: boolean expected, got {value!r}")
    if strict and schema.get("choices") and value not in [c["value"] for c in schema["choices"]]:
        raise ValueError(
            f"option {name}: {value!r} is not one of the choices {[c['value'] for c in schema['choices']]}"
        )
    if strict and otype in (INTEGER, NUMBER):
        if "min_value" in schema and value < schema["min_value"]:
            raise ValueError(f"option {name}: below min_value")
        if "max_value" in schema and value > schema["max_value"]:
            raise ValueError(f"option {name}: above max_value")
    return value
