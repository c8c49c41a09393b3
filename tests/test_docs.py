"""The newcomer's documents stay true: every setting documented with its real default, the README's two
commands are what CI runs, the generated examples and settings table are current, the permissions match, the
costs quoted are the defaults', and nothing names a file the repository does not have."""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bot.core.settings import Settings, load_settings
from bot.discord_side.invite import PERMISSION_LABELS, SCOPES, permissions

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SETTINGS_DOC = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
START = "python3 scripts/start.py"
TEST = "python3 scripts/test.py"
NOT_SETTINGS = {"FFMPEG_BINARY"}  # read by bot/core/media/video.py from the environment, documented alongside


def load_renderer(name: str = "render_examples") -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


RENDER = load_renderer()
DOCUMENTED = {
    s.name: s for s in RENDER.parse_env_example((ROOT / ".env.example").read_text(encoding="utf-8"))
}
FIELDS = {name.upper(): name for name in Settings.model_fields}


def settings_table_names() -> set[str]:
    block = SETTINGS_DOC.split("<!-- BEGIN settings -->")[1].split("<!-- END settings -->")[0]
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", block, re.MULTILINE))


def test_every_setting_is_in_env_example() -> None:
    missing = sorted(set(FIELDS) - set(DOCUMENTED))
    assert not missing, f"settings missing from .env.example: {missing}"


def test_env_example_names_only_real_settings() -> None:
    unknown = sorted(set(DOCUMENTED) - set(FIELDS) - NOT_SETTINGS)
    assert not unknown, f".env.example documents variables that bot/core/settings.py doesn't read: {unknown}"


def test_every_setting_is_in_the_settings_table() -> None:
    missing = sorted(set(FIELDS) - settings_table_names())
    assert not missing, (
        f"settings missing from docs/settings.md's table: {missing} "
        "(add them to .env.example, then run .venv/bin/python scripts/render_examples.py)"
    )


def test_every_setting_is_explained() -> None:
    unexplained = sorted(name for name, s in DOCUMENTED.items() if len(s.description) < 15)
    assert not unexplained, f"settings without an explanation in .env.example: {unexplained}"


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    for name in FIELDS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env
    return load_settings()


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_env_example_shows_the_real_default(name: str, no_env: Settings) -> None:
    documented = DOCUMENTED.get(name)
    if documented is None:
        pytest.fail(f"{name} is missing from .env.example")
    field = FIELDS[name]
    default = getattr(no_env, field)
    if documented.required or not documented.value:
        assert default is None, f"{name} defaults to {default!r}; .env.example should show it as # {name}=..."
        return
    assert getattr(load_settings(**{field: documented.value}), field) == default, (
        f".env.example shows {name}={documented.value}, "
        f"but the default in bot/core/settings.py is {default!r}"
    )


def test_required_settings_are_the_secrets() -> None:
    required = {name for name, s in DOCUMENTED.items() if s.required}
    assert required == {"DISCORD_TOKEN", "NOVITA_API_KEY"}
    assert all(not DOCUMENTED[name].value for name in required), ".env.example must not hold a secret"


def test_generated_parts_are_current() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, text in RENDER.rendered().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"out of date: {stale}; run .venv/bin/python scripts/render_examples.py"


def test_the_pictures_html_sources_are_current_and_every_picture_exists() -> None:
    pictures = load_renderer("render_examples_pictures")
    stale = [
        str(path.relative_to(ROOT))
        for path, text in pictures.sources().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"out of date: {stale}; run .venv/bin/python scripts/render_examples_pictures.py"
    examples = (ROOT / "docs" / "examples.md").read_text(encoding="utf-8")
    shown = re.findall(r"!\[[^\]]*\]\((pictures/[^)]+\.png)\)", examples)
    shown += re.findall(r"!\[[^\]]*\]\(docs/(pictures/[^)]+\.png)\)", README)
    assert len(shown) >= 14
    assert all((ROOT / "docs" / name).is_file() for name in shown), "run scripts/render_examples_pictures.py"
    for kind in ("card-queued", "card-at-novita", "card-generating", "card-downloading", "result",
                 "card-failed", "refusal", "usage", "about", "server-usage"):  # fmt: skip
        assert f"pictures/{kind}.png" in examples


def test_readme_shows_the_two_commands() -> None:
    for command in (START, TEST):
        assert f"`{command}`" in README or f"\n{command}\n" in README, f"README lacks `{command}`"
    assert (ROOT / "scripts" / "start.py").is_file()
    assert (ROOT / "scripts" / "test.py").is_file()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    commands = [
        line.removeprefix("exec ") for line in lines if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert [shlex.split(c) for c in commands] == [shlex.split(TEST)]
    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    runs = [r.strip() for r in re.findall(r"^\s*run:\s*(.+)$", workflow, re.MULTILINE)]
    assert runs == [TEST], f"ci.yml should run only `{TEST}`, runs {runs}"
    for version in ("3.11", "3.12"):
        assert f'"{version}"' in workflow


def test_readme_lists_exactly_the_invite_permissions() -> None:
    assert f"**{permissions().value}**" in README
    for label in PERMISSION_LABELS.values():
        assert f"| {label} |" in README
    for scope in SCOPES:
        assert f"`{scope}`" in README


def test_readme_links_resolve_to_headings() -> None:
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", README, re.MULTILINE)
    }
    links = set(re.findall(r"\]\(#([^)]+)\)", README))
    assert links <= anchors, f"README links to missing sections: {sorted(links - anchors)}"


def test_readme_links_to_documents_that_exist() -> None:
    for target in re.findall(r"\]\(((?!https?:|#)[^)#]+)", README):
        assert (ROOT / target).exists(), f"README links to a missing file: {target}"


def test_readme_opens_with_what_you_need_and_what_it_costs(no_env: Settings) -> None:
    first = re.findall(r"^## (.+)$", README, re.MULTILINE)[0]
    assert first == "What you need, and what it costs"
    settings = no_env
    cheapest = min(settings.price_table.values())
    per_member_day = settings.default_quota_credits * cheapest / min(settings.credit_table.values())
    assert f"${per_member_day:.2f} a day" in README  # the defaults' worst case, as quoted
    for name in ("MONTHLY_BUDGET_USD", "/quota budget", "python3-venv", "Manage Server"):
        assert name in README


def test_quick_start_is_clone_setup_start() -> None:
    block = README.split("## Quick start")[1].split("```sh")[1].split("```")[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands[0].startswith("git clone ")
    assert commands[-2:] == [f"{START} setup", START]


# Names of files that live outside the repository: built so that this test does not name them itself.
OUTSIDE = re.compile(r"(PRODUCT|ARCHITECTURE)\.md|novita[-]facts|seed[-]novita")
SKIP_DIRS = {".git", ".venv", "data", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache"}


def repository_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*"):
        parts = set(path.relative_to(ROOT).parts)
        if path.is_file() and not parts & SKIP_DIRS and not any(p.endswith(".egg-info") for p in parts):
            files.append(path)
    return files


def test_nothing_in_the_repository_names_a_file_outside_it() -> None:
    hits = []
    for path in repository_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}")
    assert not hits, "cite docs/commands.md or docs/novita-api.md instead:\n" + "\n".join(hits)


def test_the_changelog_and_the_license_match_the_package() -> None:
    from bot import __version__

    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "keepachangelog.com" in changelog
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", changelog, re.MULTILINE)
    assert released, "CHANGELOG.md has no released version"
    assert released[0] == __version__, f"CHANGELOG's latest version {released[0]} is not {__version__}"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'version = "{__version__}"' in pyproject
    assert 'license = "MIT"' in pyproject
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


def test_the_architecture_diagram_is_the_job_state_table() -> None:
    from bot.core.models import FINAL_STATES, TRANSITIONS

    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    diagram = doc.split("```mermaid\nstateDiagram-v2\n", 1)[1].split("```", 1)[0]
    edges = {tuple(line.strip().split(" --> ")) for line in diagram.splitlines() if " --> " in line}
    table = {(old.value, new.value) for old, targets in TRANSITIONS.items() for new in targets}
    assert {e for e in edges if "[*]" not in e} == table
    assert {new for old, new in edges if old == "[*]"} == {"accepted"}
    assert {old for old, new in edges if new == "[*]"} == {s.value for s in FINAL_STATES}


def test_docs_name_only_files_that_exist() -> None:
    named: set[str] = set()
    for path in [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")]:
        named |= set(re.findall(r"`((?:bot|cogs|tests|scripts|bench)/[\w/.]+?)(?:::\w+)?`", path.read_text()))
    for path in [*(ROOT / "bot").rglob("*.py"), *(ROOT / "cogs").glob("*.py")]:
        named |= set(re.findall(r"`((?:bot|cogs)/[\w/]+\.py)`", path.read_text()))
    missing = sorted(n for n in named if not (ROOT / n.rstrip("/")).exists() and "*" not in n)
    assert not missing, f"docs or docstrings name files that do not exist: {missing}"
