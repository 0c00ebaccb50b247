"""The deployment files, checked without a container engine (issue 15 point 4).

The Dockerfile's install steps are the Makefile's recipes (the commands CI runs through
`make test`), expanded with the image's paths; compose.yaml parses and wires the
migrations before the app; .env.example names exactly the settings; the proxy examples
send the webhook path to the app's port; and `run` believes the forwarded headers only
from RIPARTIRE_FORWARDED_ALLOW_IPS.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
import yaml

from shared.settings import ENV_PREFIX, Settings, SettingsError, load_settings
from tests.conftest import BACKEND, DATA_KEY, DatabaseFactory

ROOT = Path(__file__).resolve().parents[1]
RIPARTIRE = shutil.which("ripartire", path=str(Path(sys.executable).parent)) or "ripartire"
# The image's values of the Makefile's variables (Dockerfile: WORKDIR /app, no dev extras).
IMAGE_VARIABLES = {"PYTHON": "python3", "VENV": "/app/.venv", "EXTRAS": ""}
SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "KEY")


# --- the Dockerfile and the Makefile ------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each Dockerfile instruction, continuations joined."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            found.append((instruction.upper(), " ".join(arguments.split())))
    return found


def make_variables(overrides: dict[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (ROOT / "Makefile").read_text().splitlines():
        defined = re.match(r"^([A-Z_]+)\s*(?::=|\?=|=)\s*(.*)$", line)
        if defined:
            values[defined[1]] = defined[2].strip()
    values |= overrides

    def expand(value: str) -> str:
        while (found := re.search(r"\$\(([A-Z_]+)\)", value)) is not None:
            value = value.replace(found[0], values[found[1]])
        return value

    return {name: expand(value) for name, value in values.items()}


def recipe(target: str, variables: dict[str, str]) -> list[str]:
    """The commands of a Makefile rule, expanded, without its `touch` of the stamp."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    commands = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        command = re.sub(r"\$\(([A-Z_]+)\)", lambda m: variables[m[1]], line.strip())
        if not command.startswith("touch "):
            commands.append(" ".join(command.split()))
    return commands


def test_the_image_installs_with_the_makefiles_commands() -> None:
    variables = make_variables(IMAGE_VARIABLES)
    python, assets = recipe("$(STAMP)", variables), recipe("$(ASSETS)", variables)
    assert len(python) == 3 and len(assets) == 1  # venv, pip, the package; npm's packages
    runs = [arguments for instruction, arguments in dockerfile() if instruction == "RUN"]
    # Each command is one RUN of its own, each rule's in the Makefile's order (the assets
    # are installed in a stage of their own, whose node_modules the image copies).
    for commands in (python, assets):
        positions = [runs.index(command) for command in commands]
        assert positions == sorted(positions)
    assert ("COPY", "--from=assets /build/dashboard/assets/node_modules "
            "dashboard/assets/node_modules") in dockerfile()  # fmt: skip
    # The Makefile's developers' extras are what the image leaves out, nothing else.
    developer = recipe("$(STAMP)", make_variables({**IMAGE_VARIABLES, "EXTRAS": "[dev]"}))
    assert developer == recipe("$(STAMP)", make_variables({"VENV": "/app/.venv"}))
    assert [c for c in developer if "[dev]" in c] == [
        "/app/.venv/bin/python -m pip install --quiet -e '.[dev]'"
    ]


def test_the_image_runs_as_a_user_checks_its_health_and_holds_no_secret() -> None:
    instructions = dockerfile()
    users = [arguments for instruction, arguments in instructions if instruction == "USER"]
    assert users, "no USER: the app would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    [healthcheck] = [a for i, a in instructions if i == "HEALTHCHECK"]
    assert "http://127.0.0.1:8000/healthz" in healthcheck
    [command] = [a for i, a in instructions if i == "CMD"]
    assert command == '["ripartire", "run", "--host", "0.0.0.0", "--port", "8000"]'
    assert ("EXPOSE", "8000") in instructions
    for instruction, arguments in instructions:
        if instruction in ("COPY", "ADD"):
            sources = [s for s in shlex.split(arguments) if not s.startswith("--")][:-1]
            assert all(".env" not in s and s not in (".", "./") for s in sources), arguments
        if instruction in ("ENV", "ARG"):
            assert not any(word in arguments.upper() for word in SECRET_WORDS), arguments
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored and ".env.*" in ignored and "data" in ignored


# --- compose.yaml ----------------------------------------------------------------------


def test_compose_runs_postgresql_the_migrations_then_the_app() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "migrate", "app"}
    assert services["db"]["image"].startswith("postgres:15")
    assert services["migrate"]["command"] == ["ripartire", "db", "upgrade"]
    assert services["app"]["command"][:2] == ["ripartire", "run"]
    assert services["app"]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"
    }
    assert services["migrate"]["depends_on"]["db"] == {"condition": "service_healthy"}
    for name in ("migrate", "app"):
        service = services[name]
        assert service["build"] == "." and service["env_file"] == ".env"
        url = service["environment"]["RIPARTIRE_DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://ripartire:${POSTGRES_PASSWORD")
        assert url.endswith("@db:5432/ripartire")
    # Secrets come from the env file, never written here.
    for service in services.values():
        for name, value in service.get("environment", {}).items():
            if any(word in name for word in SECRET_WORDS):
                assert str(value).startswith("${"), name
    # The app is reached through the proxy on this host only.
    assert services["app"]["ports"] == ["127.0.0.1:8000:8000"]
    gateway = compose["networks"]["default"]["ipam"]["config"][0]["gateway"]
    assert services["app"]["environment"]["RIPARTIRE_FORWARDED_ALLOW_IPS"].endswith(
        f":-{gateway}}}"
    )


# --- .env.example ----------------------------------------------------------------------


def _example_lines() -> list[tuple[str, str]]:
    found = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        assignment = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if assignment:
            found.append((assignment[1], assignment[2]))
    return found


def _written(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    if isinstance(value, date):
        return value.isoformat()
    return str(value).rstrip("/")


def test_env_example_lists_every_setting_with_its_default() -> None:
    assert Settings.model_config["env_prefix"] == ENV_PREFIX
    settings = {ENV_PREFIX + name.upper(): field for name, field in Settings.model_fields.items()}
    lines = _example_lines()
    named = {name for name, _ in lines if name.startswith(ENV_PREFIX)}
    assert named == set(settings)
    assert {name for name, _ in lines} - named == {"POSTGRES_PASSWORD"}  # compose.yaml's
    first: dict[str, str] = {}
    for name, value in lines:
        first.setdefault(name, value)
    for name, field in settings.items():
        if field.default is not None:
            assert first[name] == _written(field.default), name
    # Parsed as the program parses it, the example's defaults are the defaults.
    written = {
        name.removeprefix(ENV_PREFIX).lower(): first[name]
        for name, field in settings.items()
        if field.default is not None
    }
    parsed = load_settings(**written, _env_file=None)
    for name in written:
        assert getattr(parsed, name) == Settings.model_fields[name].default, name


# --- the reverse proxy -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["Caddyfile", "nginx.conf"])
def test_the_proxy_examples_send_the_webhook_and_the_dashboard_to_the_app(name: str) -> None:
    config = (ROOT / "docs" / "deploy" / name).read_text()
    assert "/telegram/webhook" in config
    assert "127.0.0.1:8000" in config
    assert "X-Forwarded-Proto" in config and "RIPARTIRE_FORWARDED_ALLOW_IPS" in config
    if name == "nginx.conf":
        assert "listen 443 ssl" in config
        assert "proxy_set_header X-Forwarded-Proto $scheme;" in config


def test_forwarded_allow_ips_refuses_what_is_not_an_address() -> None:
    assert load_settings(forwarded_allow_ips=" 10.0.0.0/8, ::1 ").forwarded_allow_ips == (
        "10.0.0.0/8,::1"
    )
    assert load_settings(forwarded_allow_ips="*").forwarded_allow_ips == "*"
    with pytest.raises(SettingsError, match=r"RIPARTIRE_FORWARDED_ALLOW_IPS: 'proxy\.lan' is not"):
        load_settings(forwarded_allow_ips="127.0.0.1,proxy.lan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def start(tmp_path: Path, database_factory: DatabaseFactory) -> Iterator[object]:
    processes: list[subprocess.Popen[str]] = []

    async def run(allow: str | None) -> int:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RIPARTIRE_")}
        env |= {"RIPARTIRE_DATA_KEY": DATA_KEY, "RIPARTIRE_SECRET_KEY": "s" * 40}
        env["RIPARTIRE_DATABASE_URL"] = await database_factory.create()
        if allow is not None:
            env["RIPARTIRE_FORWARDED_ALLOW_IPS"] = allow
        port = _free_port()
        process = subprocess.Popen(
            [RIPARTIRE, "run", "--port", str(port)], cwd=tmp_path, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        processes.append(process)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, "ripartire run exited"
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                return port
            except httpx.TransportError:
                time.sleep(0.3)
        raise AssertionError("ripartire run did not answer in time")

    yield run
    for process in processes:
        process.terminate()
        process.wait(timeout=30)


async def test_run_believes_forwarded_headers_only_from_the_allowed_proxies(start: object) -> None:
    over_https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    # The default: a proxy on this host (the test's client is 127.0.0.1).
    port = await start(None)  # type: ignore[operator]
    response = httpx.get(f"http://127.0.0.1:{port}/login", headers=over_https, timeout=10)
    assert "Strict-Transport-Security" in response.headers, BACKEND
    assert (
        "Strict-Transport-Security"
        not in httpx.get(f"http://127.0.0.1:{port}/login", timeout=10).headers
    )
    # Another proxy's address only: this client's headers are not believed.
    port = await start("192.0.2.1")  # type: ignore[operator]
    response = httpx.get(f"http://127.0.0.1:{port}/login", headers=over_https, timeout=10)
    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response.headers
