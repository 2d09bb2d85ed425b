"""python -m app: the verbs a newcomer and an operator use, run as they run them (a subprocess),
judged by what they print and how they exit. A mistake of theirs is one line on stderr, never a
traceback, unless they ask for it with --debug or LOG_LEVEL=DEBUG."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from tortoise.models import Model

from app.accounts.models import ApiToken, User
from app.accounts.tokens import TokenService, hash_token
from app.audit.models import AuditLog
from app.db import Database
from tests.support.databases import POSTGRES_URL, create_postgres_database, drop_postgres_database
from tests.support.eventually import START_SECONDS
from tests.support.processes import free_port

MIGRATIONS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "migrations").glob("0*.py"))
UNREACHABLE = "postgres://postgres:hunter2@127.0.0.1:1/plugboard"
UNREACHABLE_SHOWN = "postgres://postgres:***@127.0.0.1:1/plugboard"
QUIET = {"PUBLIC_URL": "https://plugboard.example", "SCHEDULER_ENABLED": "false", "LOG_LEVEL": "INFO"}


async def run_cli(
    *args: str, database_url: str | None = None, env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[int, str, str]:
    """`python -m app ARGS`; without `database_url`, DATABASE_URL is left unset (the default)."""
    extra = {**QUIET, **(env or {})}
    if database_url is not None:
        extra["DATABASE_URL"] = database_url
    environ = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *args,
        env={**environ, **extra},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 90)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"python -m app {' '.join(args)} did not finish within 90 s") from None
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def one_error_line(err: str) -> str:
    """The single line a failed command printed, which must start with `error:`."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


async def rows(database_url: str, model: type[Model], **filters: object) -> list:
    db = Database(database_url)
    await db.open()
    try:
        with db.bound():
            return await model.filter(**filters)
    finally:
        await db.close()


async def token_user(database_url: str, token: str) -> str | None:
    db = Database(database_url)
    await db.open()
    try:
        with db.bound():
            ctx = await TokenService().authenticate(token)
    finally:
        await db.close()
    return None if ctx is None else ctx.user_id


@pytest.fixture
async def fresh_database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database with nothing in it yet: a SQLite file not made yet (in a directory that exists),
    or an empty PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite://{tmp_path}/plugboard.sqlite3"
        return
    url = await create_postgres_database()  # skips (fails under CI) without a server
    yield url
    await drop_postgres_database(url)


@pytest.fixture
async def unknown_postgres_url() -> AsyncIterator[str]:
    """A PostgreSQL database name the server does not have (dropped afterwards if a test made it)."""
    url = await create_postgres_database()  # skips (fails under CI) without a server
    await drop_postgres_database(url)
    yield url
    await drop_postgres_database(url)


async def postgres_has_database(url: str) -> bool:
    name = urlsplit(url).path.lstrip("/")
    connection = await asyncpg.connect(POSTGRES_URL.replace("postgres://", "postgresql://", 1), timeout=30)
    try:
        return bool(await connection.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name))
    finally:
        await connection.close()


async def first_lines_of_serve(count: int, env: dict[str, str], cwd: Path | None = None) -> tuple[int, list[str], str]:
    """Starts `serve` on a free port, reads its first `count` lines of stdout, stops it."""
    port = free_port()
    environ = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "serve",
        "--port",
        str(port),
        env={**environ, **QUIET, "PYTHONUNBUFFERED": "1", **env},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        lines = [
            (await asyncio.wait_for(process.stdout.readline(), START_SECONDS)).decode().rstrip("\n")
            for _ in range(count)
        ]
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    return port, lines, err.decode()


def this_python() -> str:
    """The interpreter a hint names: the one running (the project's .venv/bin/python under `make
    test`: a system python3 lacks the dependencies), relative to the folder the CLI runs in."""
    python = Path(sys.executable)
    return str(python.relative_to(Path.cwd())) if python.is_relative_to(Path.cwd()) else str(python)


def only_once(backend: str) -> None:
    """For behaviour that does not depend on the test database's backend."""
    if backend != "sqlite":
        pytest.skip("does not depend on the database backend")


# --- create-user, migrate, makemigrations ----------------------------------------------------


async def test_create_user_prints_a_token_that_authenticates_and_stores_only_its_hash(database_url):
    code, out, _ = await run_cli("create-user", "Ada@Example.com", "--plan", "pro", database_url=database_url)
    assert code == 0
    token = out.strip().splitlines()[-1]
    assert token.startswith("pb_")
    assert out.count(token) == 1

    db = Database(database_url)
    await db.open()
    try:
        with db.bound():
            user = await User.get(email="ada@example.com")
            assert user.plan.value == "pro"
            stored = await ApiToken.filter(user_id=user.id).values_list("token_hash", flat=True)
            assert stored == [hash_token(token)]
            assert token not in stored
            tokens = TokenService()
            ctx = await tokens.authenticate(token)
            assert ctx is not None and ctx.user_id == user.id
            assert await tokens.authenticate(token + "x") is None
    finally:
        await db.close()


async def test_create_user_on_a_fresh_database_applies_the_migrations_first(fresh_database_url):
    code, out, err = await run_cli("create-user", "new@example.com", database_url=fresh_database_url)
    assert code == 0, err
    assert err.strip() == f"Applied pending migrations first: {', '.join(MIGRATIONS)}"
    token = out.strip().splitlines()[-1]
    assert await token_user(fresh_database_url, token) is not None


async def test_create_user_refuses_a_taken_email(database_url):
    assert (await run_cli("create-user", "dup@example.com", database_url=database_url))[0] == 0
    code, out, err = await run_cli("create-user", "dup@example.com", database_url=database_url)
    assert code == 1
    assert one_error_line(err) == "error: A user with this email already exists"
    assert "pb_" not in out


async def test_create_user_refuses_an_unknown_plan(database_url):
    code, _, err = await run_cli("create-user", "x@example.com", "--plan", "platinum", database_url=database_url)
    assert code == 2
    assert "invalid choice" in err


async def test_migrate_says_what_it_applied_then_that_nothing_was_pending(fresh_database_url):
    code, out, err = await run_cli("migrate", database_url=fresh_database_url)
    assert code == 0, err
    assert out.splitlines() == [f"Database: {fresh_database_url}", *(f"Applied {name}" for name in MIGRATIONS)]
    code, out, err = await run_cli("migrate", database_url=fresh_database_url)
    assert code == 0, err
    assert out.splitlines() == [
        f"Database: {fresh_database_url}",
        f"No pending migrations: the database is up to date (latest: {MIGRATIONS[-1]}).",
    ]
    assert err == ""


async def test_makemigrations_finds_nothing_to_write(database_url):
    code, out, _ = await run_cli("makemigrations", database_url=database_url)
    assert code == 0
    assert "No changes detected" in out


# --- the database: which one, made only when asked, migrated one process at a time --------------


async def test_two_migrates_at_once_take_turns_and_both_succeed(fresh_database_url):
    first, second = await asyncio.gather(
        run_cli("migrate", database_url=fresh_database_url), run_cli("migrate", database_url=fresh_database_url)
    )
    assert (first[0], second[0]) == (0, 0), (first, second)
    assert first[2] == second[2] == ""
    outputs = sorted([first[1].splitlines(), second[1].splitlines()], key=len)
    assert outputs == [
        [
            f"Database: {fresh_database_url}",
            f"No pending migrations: the database is up to date (latest: {MIGRATIONS[-1]}).",
        ],
        [f"Database: {fresh_database_url}", *(f"Applied {name}" for name in MIGRATIONS)],
    ]


async def test_a_migration_that_fails_is_named_and_not_blamed_on_the_connection(backend, fresh_database_url):
    # A table the first migration creates, made by hand beforehand.
    if backend == "sqlite":
        with sqlite3.connect(fresh_database_url.removeprefix("sqlite://")) as connection:
            connection.execute("CREATE TABLE plugins (id INTEGER)")
    else:
        connection = await asyncpg.connect(fresh_database_url.replace("postgres://", "postgresql://", 1))
        try:
            await connection.execute("CREATE TABLE plugins (id INTEGER)")
        finally:
            await connection.close()
    code, out, err = await run_cli("migrate", database_url=fresh_database_url)
    assert code == 1
    line = one_error_line(err)
    assert line.startswith("error: migration 0001_initial failed, so none was applied: "), line
    assert "already exists" in line and "plugins" in line
    assert "cannot use the database" not in line
    assert out == ""
    db = Database(fresh_database_url)
    await db.open()
    try:
        assert await db.applied_migrations() == []
    finally:
        await db.close()


async def test_an_unknown_postgres_database_is_one_line_saying_how_to_create_it_and_is_not_created(
    backend, unknown_postgres_url
):
    if backend != "postgres":
        pytest.skip("a PostgreSQL database")
    name = urlsplit(unknown_postgres_url).path.lstrip("/")
    parts = urlsplit(POSTGRES_URL)
    expected = (
        f'error: cannot use the database at DATABASE_URL={unknown_postgres_url}: the database "{name}" does not '
        f"exist (create it: createdb -h {parts.hostname} -p {parts.port or 5432} -U {parts.username} {name}, "
        "or run `python -m app migrate --create-database`)"
    )
    for command in (
        ("migrate",),
        ("users", "list"),
        ("create-user", "ada@example.com"),
        ("worker",),
        ("serve", "--port", "0"),
    ):
        code, out, err = await run_cli(*command, database_url=unknown_postgres_url)
        assert code == 1, (command, err)
        assert one_error_line(err) == expected, command
        assert "pb_" not in out
    assert not await postgres_has_database(unknown_postgres_url)

    code, out, err = await run_cli("migrate", "--create-database", database_url=unknown_postgres_url)
    assert code == 0, err
    assert out.splitlines() == [f"Database: {unknown_postgres_url}", *(f"Applied {name}" for name in MIGRATIONS)]
    assert await postgres_has_database(unknown_postgres_url)


async def test_a_missing_sqlite_directory_is_one_line_and_is_not_made(backend, tmp_path):
    only_once(backend)
    directory = tmp_path / "no" / "such" / "dir"
    url = f"sqlite://{directory}/plugboard.sqlite3"
    expected = (
        f"error: cannot use the database at DATABASE_URL={url}: the directory {directory} does not exist "
        "(make it first, or run `python -m app migrate --create-database`)"
    )
    for command in (("migrate",), ("users", "list"), ("worker",), ("serve", "--port", "0")):
        code, _, err = await run_cli(*command, database_url=url)
        assert code == 1, (command, err)
        assert one_error_line(err) == expected, command
    assert not (tmp_path / "no").exists()

    code, out, err = await run_cli("migrate", "--create-database", database_url=url)
    assert code == 0, err
    assert out.splitlines()[1:] == [f"Applied {name}" for name in MIGRATIONS]
    assert (directory / "plugboard.sqlite3").is_file()


async def test_the_default_database_is_one_file_in_the_data_directory_whatever_the_current_directory(backend, tmp_path):
    only_once(backend)
    data = tmp_path / "data"  # DATA_DIR: made when missing
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    env = {"DATA_DIR": str(data)}
    code, _, err = await run_cli("create-user", "ada@example.com", env=env, cwd=here)
    assert code == 0, err
    code, out, err = await run_cli("users", "list", env=env, cwd=there)
    assert code == 0, err
    assert "ada@example.com" in out
    assert sorted(p.name for p in data.iterdir() if p.suffix == ".sqlite3") == ["plugboard.sqlite3"]
    assert list(here.iterdir()) == list(there.iterdir()) == []

    _, lines, _ = await first_lines_of_serve(2, env, cwd=there)
    assert lines[1] == f"Database:  sqlite://{data}/plugboard.sqlite3 (file {data}/plugboard.sqlite3)"


# --- one line for a mistake -------------------------------------------------------------------

SCHEMA_COMMANDS = [
    ("migrate",),
    ("create-user", "ada@example.com"),
    ("users", "list"),
    ("users", "set-plan", "ada@example.com", "pro"),
    ("tokens", "create", "ada@example.com"),
    ("tokens", "list", "ada@example.com"),
    ("tokens", "revoke", "0123456789abcdef0123456789abcdef"),
    ("makemigrations",),
    ("worker",),
    ("serve", "--port", "0"),
]


@pytest.mark.parametrize("command", SCHEMA_COMMANDS, ids=" ".join)
async def test_an_unreachable_database_is_one_line_naming_the_setting_the_address_and_the_cause(backend, command):
    only_once(backend)
    code, out, err = await run_cli(*command, database_url=UNREACHABLE)
    assert code == 1
    line = one_error_line(err)
    assert line == (
        f"error: cannot use the database at DATABASE_URL={UNREACHABLE_SHOWN}: "
        "connection refused at 127.0.0.1:1 (is PostgreSQL running there?)"
    )
    assert "hunter2" not in out + err
    assert "Application startup complete" not in err


async def test_an_unknown_database_host_is_named(backend):
    only_once(backend)
    code, _, err = await run_cli("migrate", database_url="postgres://postgres@no-such-host.invalid:5432/plugboard")
    assert code == 1
    line = one_error_line(err)
    assert "DATABASE_URL=postgres://postgres@no-such-host.invalid:5432/plugboard" in line
    assert "the host name no-such-host.invalid is not known" in line


async def test_a_login_the_server_refuses_is_named(backend, database_url):
    if backend != "postgres":
        pytest.skip("a PostgreSQL login")
    refused = database_url.replace("postgres://postgres@", "postgres://nobody_here:hunter2@", 1)
    code, out, err = await run_cli("users", "list", database_url=refused)
    assert code == 1
    line = one_error_line(err)
    assert 'role "nobody_here" does not exist' in line
    assert "nobody_here:***@" in line and "hunter2" not in out + err


@pytest.mark.parametrize(
    ("url", "found"),
    [
        ("nonsense", "found no scheme"),
        ("mysql://root@db/plugboard", "found the scheme 'mysql'"),
        ("sqlite://", "no file path"),
    ],
)
async def test_a_database_url_that_is_not_one_is_one_line(backend, url, found):
    only_once(backend)
    for command in (("migrate",), ("create-user", "ada@example.com"), ("serve", "--port", "0")):
        code, _, err = await run_cli(*command, database_url=url)
        assert code == 1
        line = one_error_line(err)
        assert line.startswith(f"error: DATABASE_URL={url!r} is not valid: expected sqlite://PATH or postgres://")
        assert found in line


async def test_a_file_that_is_not_a_sqlite_database_is_one_line_not_a_hang(backend, tmp_path):
    only_once(backend)
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 20)
    for command in (("migrate",), ("users", "list")):
        code, _, err = await run_cli(*command, database_url=f"sqlite://{path}")
        assert code == 1
        assert one_error_line(err) == (
            f"error: cannot use the database at DATABASE_URL=sqlite://{path}: file is not a database ({path})"
        )
    assert path.read_text() == "these are my notes, not a database\n" * 20


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("PLAN_LIMIT_PRO", "ten", 'a whole number of plugins (0 or more) or "unlimited"'),
        ("INBOX_LEASE_SECONDS", "1m", "a number of seconds above 0"),
        ("ACCESS_LOG", "maybe", "true or false"),
        ("PORT", "eighty", "a whole number (0 to 65535)"),
    ],
)
async def test_a_bad_setting_is_one_line_naming_the_variable_and_what_it_expected(
    backend, database_url, name, value, expected
):
    only_once(backend)
    for command in (("migrate",), ("users", "list"), ("serve",)):
        code, _, err = await run_cli(*command, database_url=database_url, env={name: value})
        assert code == 1
        line = one_error_line(err)
        assert line.startswith(f"error: {name}={value!r} is not valid: expected ")
        assert expected in line


@pytest.mark.parametrize(
    ("args", "env"),
    [(("--debug", "migrate"), {}), (("migrate", "--debug"), {}), (("migrate",), {"LOG_LEVEL": "DEBUG"})],
)
async def test_debug_shows_the_traceback_behind_the_line(backend, args, env):
    only_once(backend)
    code, _, err = await run_cli(*args, database_url=UNREACHABLE, env=env)
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert "ConnectionRefusedError" in err
    assert err.strip().splitlines()[-1].startswith("error: cannot use the database at DATABASE_URL=")
    assert "hunter2" not in err


async def test_debug_shows_the_traceback_behind_a_bad_setting(backend):
    only_once(backend)
    code, _, err = await run_cli("--debug", "migrate", env={"PLAN_LIMIT_PRO": "ten"})
    assert code == 1
    assert "Traceback (most recent call last)" in err and "SettingError" in err
    assert err.strip().splitlines()[-1].startswith("error: PLAN_LIMIT_PRO='ten' is not valid")


# --- serve ------------------------------------------------------------------------------------


async def test_serve_on_a_port_in_use_fails_at_once_before_migrating(backend, tmp_path):
    only_once(backend)
    database = tmp_path / "plugboard.sqlite3"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = await run_cli("serve", "--port", str(port), database_url=f"sqlite://{database}")
    assert code == 1
    assert one_error_line(err) == (
        f"error: cannot listen on 127.0.0.1:{port}: address already in use "
        "(is another server running there? --port or PORT chooses another port)"
    )
    assert out == ""
    assert not database.exists()  # no migration ran


async def test_serve_takes_its_port_from_the_environment(backend, tmp_path):
    only_once(backend)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = await run_cli("serve", database_url=f"sqlite://{tmp_path}/db.sqlite3", env={"PORT": str(port)})
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in one_error_line(err)


async def test_serve_prints_the_addresses_the_database_without_its_password_and_the_pubsub(backend, database_url):
    url = database_url.replace("postgres://postgres@", "postgres://postgres:hunter2@", 1)  # trust: any password
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "serve",
        "--port",
        str(port),
        env={**os.environ, **QUIET, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        lines = [
            (await asyncio.wait_for(process.stdout.readline(), START_SECONDS)).decode().rstrip("\n") for _ in range(4)
        ]
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    if backend == "sqlite":
        shown = f"{url} (file {Path(url.removeprefix('sqlite://')).resolve()})"
    else:
        shown = url.replace(":hunter2@", ":***@")
    assert lines == [
        f"Plugboard: http://127.0.0.1:{port}/  (GraphiQL: http://127.0.0.1:{port}/graphql)",
        f"Database:  {shown}",
        "Pub/sub:   memory:// (live updates reach this process's subscribers only)",
        "Telegram:  webhooks: Telegram posts each bot's updates to https://plugboard.example/webhooks/telegram/… "
        "(PUBLIC_URL is an HTTPS address Telegram posts to)",
    ]
    assert "hunter2" not in err.decode()


# --- help -------------------------------------------------------------------------------------


async def test_help_points_to_the_settings_and_each_command_shows_its_defaults(backend):
    only_once(backend)
    code, out, _ = await run_cli("--help")
    assert code == 0
    assert 'README.md\'s "Configuration" table lists every one' in " ".join(out.split())
    for verb in ("serve", "worker", "migrate", "create-user", "users", "tokens", "export-schema", "demo"):
        assert f"    {verb}" in out
    expectations = {
        ("serve", "--help"): ["default: HOST from the environment, else 127.0.0.1", "else 8000", "default: 1"],
        ("create-user", "--help"): ["default: free"],
        ("tokens", "create", "--help"): ["default: cli", "default: never", "1 to 3650"],
        ("users", "--help"): ["list", "set-plan", "delete"],
        ("tokens", "--help"): ["create", "list", "revoke"],
    }
    for args, texts in expectations.items():
        code, out, _ = await run_cli(*args)
        flat = " ".join(out.split())
        assert code == 0
        for text in texts:
            assert text in flat, (args, out)


# --- users ------------------------------------------------------------------------------------

INSTALL = "mutation($id: ID!) { installPlugin(pluginId: $id) { id } }"


async def install_all(app, user) -> list[dict]:
    """Installs the two built-in plugins that need no settings (forward needs a URL and a secret)."""
    plugins = (await app.graphql("{ plugins { id slug } }"))["plugins"]
    return [
        await app.graphql_response(INSTALL, {"id": p["id"]}, user=user)
        for p in plugins
        if p["slug"] in ("welcome", "analytics")
    ]


async def test_users_list_shows_email_plan_installs_and_created(app, database_url):
    code, out, _ = await run_cli("users", "list", database_url=database_url)
    assert code == 0
    assert (
        out.strip() == f"No users yet. Create one: {this_python()} -m app create-user EMAIL [--plan free|pro|business]"
    )

    ada = await app.create_user("ada@example.com", "pro")
    await app.create_user("grace@example.com", "free")
    assert all("errors" not in r for r in await install_all(app, ada))
    code, out, _ = await run_cli("users", "list", database_url=database_url)
    assert code == 0
    lines = [line.split() for line in out.strip().splitlines()]
    assert lines[0] == ["EMAIL", "PLAN", "INSTALLS", "CREATED"]
    assert [line[:3] for line in lines[1:]] == [["ada@example.com", "pro", "2"], ["grace@example.com", "free", "0"]]
    assert all(line[4].endswith("Z") for line in lines[1:])  # created: date, then the UTC time


async def test_the_hint_names_an_interpreter_that_runs_the_cli(backend, database_url):
    """Not `python -m app`: a system python3 has no asyncpg. The hint's command runs as printed."""
    code, out, _ = await run_cli("users", "list", database_url=database_url)
    assert code == 0
    python, *rest = out.strip().removeprefix("No users yet. Create one: ").split(" create-user ")[0].split()
    assert rest == ["-m", "app"] and python != "python"
    process = await asyncio.create_subprocess_exec(python, "-m", "app", "--help", stdout=asyncio.subprocess.PIPE)
    help_text, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0 and b"create-user" in help_text


async def test_set_plan_below_the_install_count_keeps_the_installs_refuses_new_ones_and_says_so(app, database_url):
    ada = await app.create_user("ada@example.com", "pro")
    assert all("errors" not in r for r in await install_all(app, ada))

    code, out, err = await run_cli("users", "set-plan", "ADA@example.com", "free", database_url=database_url)
    assert code == 0, err
    assert out.splitlines() == [
        "ada@example.com: pro -> free plan (1 plugin allowed, 2 installed).",
        "Over the limit: their 2 installs stay and keep working, but installing more is refused until they "
        "have fewer than 1 (uninstall 2 or more).",
    ]
    assert len((await app.graphql("{ myPlugins { id } }", user=ada))["myPlugins"]) == 2
    assert (await app.graphql("{ me { plan pluginLimit } }", user=ada))["me"] == {"plan": "FREE", "pluginLimit": 1}
    welcome = (await app.graphql('{ plugin(slug: "welcome") { id } }'))["plugin"]["id"]
    await app.graphql("mutation($id: ID!) { uninstallPlugin(pluginId: $id) }", {"id": welcome}, user=ada)
    refused = await app.graphql_error(INSTALL, {"id": welcome}, user=ada)
    assert refused["extensions"]["code"] == "PLAN_LIMIT_REACHED"

    events = await rows(database_url, AuditLog, actor_id=ada.id, action="user.set_plan")
    assert [(e.target_id, e.metadata) for e in events] == [(ada.id, {"from": "pro", "to": "free", "via": "cli"})]

    code, out, _ = await run_cli("users", "set-plan", "ada@example.com", "free", database_url=database_url)
    assert (code, out.strip()) == (0, "ada@example.com is on the free plan already; nothing changed.")
    assert len(await rows(database_url, AuditLog, actor_id=ada.id, action="user.set_plan")) == 1


async def test_set_plan_refuses_an_unknown_user_and_an_unknown_plan(database_url):
    code, _, err = await run_cli("users", "set-plan", "nobody@example.com", "pro", database_url=database_url)
    assert code == 1
    assert one_error_line(err) == "error: No user with the email nobody@example.com"
    code, _, err = await run_cli("users", "set-plan", "nobody@example.com", "gold", database_url=database_url)
    assert code == 2 and "invalid choice" in err


# --- tokens -----------------------------------------------------------------------------------


async def test_a_lost_token_is_replaced_listed_without_secrets_and_revoked(database_url):
    code, out, _ = await run_cli("create-user", "ada@example.com", database_url=database_url)
    first = out.strip().splitlines()[-1]

    code, out, err = await run_cli(
        "tokens", "create", "ada@example.com", "--name", "deploy bot", "--expires", "7", database_url=database_url
    )
    assert code == 0, err
    *text, token = out.strip().splitlines()
    assert token.startswith("pb_") and token != first and out.count(token) == 1
    assert "deploy bot" in text[0] and "expires" in text[0] and "shown this once" in text[0]
    user_id = await token_user(database_url, token)
    assert user_id is not None

    code, out, _ = await run_cli("tokens", "list", "ada@example.com", database_url=database_url)
    assert code == 0
    assert "pb_" not in out and token not in out and hash_token(token) not in out
    header, *lines = out.strip().splitlines()
    assert header.split() == ["ID", "NAME", "CREATED", "LAST", "USED", "EXPIRES", "STATUS"]
    stored = await rows(database_url, ApiToken, user_id=user_id)
    by_name = {t.name: t for t in stored}
    assert lines[0].startswith(by_name["deploy bot"].id) and lines[0].endswith("valid")
    assert lines[1].startswith(by_name["first token"].id) and " never " in lines[1]
    assert by_name["deploy bot"].expires_at is not None

    code, out, _ = await run_cli("tokens", "revoke", by_name["deploy bot"].id, database_url=database_url)
    assert code == 0
    assert out.strip() == (
        f'Revoked token {by_name["deploy bot"].id} ("deploy bot" of ada@example.com). '
        "It stops working now, in every process."
    )
    assert await token_user(database_url, token) is None
    assert await token_user(database_url, first) == user_id

    code, out, _ = await run_cli("tokens", "revoke", by_name["deploy bot"].id, database_url=database_url)
    assert code == 0 and "was revoked already" in out
    code, out, _ = await run_cli("tokens", "list", "ada@example.com", database_url=database_url)
    assert "revoked" in out.strip().splitlines()[1]

    events = await rows(database_url, AuditLog, actor_id=user_id)
    assert sorted((e.action, e.target_id, e.metadata["via"]) for e in events) == [
        ("token.create", by_name["deploy bot"].id, "cli"),
        ("token.revoke", by_name["deploy bot"].id, "cli"),
    ]
    assert all(token not in str(e.metadata) for e in events)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tokens", "create", "nobody@example.com"), "error: No user with the email nobody@example.com"),
        (
            ("tokens", "create", "ada@example.com", "--expires", "0"),
            "error: Expiry must be between 1 and 3650 days (or null: never)",
        ),
        (("tokens", "create", "ada@example.com", "--name", " "), "error: Token name must be 1 to 64 characters"),
        (
            ("tokens", "create", "ada@example.com", "--name", "a\x1b[2Jb"),
            "error: Token name must not contain control characters (line breaks, tabs, escapes)",
        ),
        (("tokens", "list", "nobody@example.com"), "error: No user with the email nobody@example.com"),
        (("tokens", "revoke", "not-an-id"), "error: No such token"),
        (("tokens", "revoke", "0123456789abcdef0123456789abcdef"), "error: No such token"),
    ],
)
async def test_token_commands_refuse_mistakes_in_one_line_and_change_nothing(database_url, args, message):
    assert (await run_cli("create-user", "ada@example.com", database_url=database_url))[0] == 0
    code, out, err = await run_cli(*args, database_url=database_url)
    assert code == 1
    assert one_error_line(err) == message
    assert "pb_" not in out
    assert len(await rows(database_url, ApiToken)) == 1
    assert await rows(database_url, AuditLog) == []


async def test_tokens_create_refuses_a_non_number_of_days(database_url):
    code, _, err = await run_cli("tokens", "create", "ada@example.com", "--expires", "soon", database_url=database_url)
    assert code == 2 and "invalid int value" in err


# --- health (the HTTP side of start-up) -------------------------------------------------------


async def test_healthz_answers_200_while_the_database_answers(app):
    assert app.http is not None
    response = await app.http.get("/healthz")
    assert response.status_code == 200


async def test_healthz_answers_503_when_the_database_is_gone(backend, make_app):
    if backend != "postgres":
        pytest.skip("a SQLite file cannot be taken away from an open connection")
    from tests.support.databases import migrated

    url = await create_postgres_database()
    await migrated(url)
    live = await make_app(database_url=url)
    assert live.http is not None
    assert (await live.http.get("/healthz")).status_code == 200
    await drop_postgres_database(url)
    assert (await live.http.get("/healthz")).status_code == 503


@pytest.mark.slow
@pytest.mark.parametrize(
    ("public_url", "warned"),
    [("http://127.0.0.1:8000", True), ("https://plugboard.example:8080", True), ("https://plugboard.example", False)],
)
async def test_serve_warns_at_start_up_when_telegram_would_refuse_public_url_for_webhooks(
    database_url, backend, public_url, warned
):
    if backend != "sqlite":
        pytest.skip("the warning does not depend on the database")
    from tests.support.serve_process import ServeProcess

    env = {
        "DATABASE_URL": database_url,
        "PUBLIC_URL": public_url,
        "SCHEDULER_ENABLED": "false",
        "TELEGRAM_DELIVERY": "webhook",
    }
    async with ServeProcess(env) as server:
        log = await server.stop()
    warnings = [line for line in log.splitlines() if "WARNING" in line and "PUBLIC_URL" in line]
    if warned:
        assert len(warnings) == 1, log
        assert public_url in warnings[0] and "Set PUBLIC_URL to this server's public HTTPS address" in warnings[0]
    else:
        assert warnings == [], log


POLLING_NOTE = "polling suits development and small deployments; webhooks suit production"


@pytest.mark.parametrize(
    ("public_url", "why"),
    [
        ("http://127.0.0.1:8000", "is not HTTPS"),
        ("https://plugboard.example:8080", "uses port 8080 (Telegram posts to 443, 80, 88 or 8443 only)"),
    ],
)
async def test_with_an_address_telegram_cannot_post_to_serve_polls_and_says_why_without_a_warning(
    database_url, backend, public_url, why
):
    only_once(backend)
    env = {"DATABASE_URL": database_url, "PUBLIC_URL": public_url}
    _, lines, err = await first_lines_of_serve(4, env)
    assert lines[3] == (
        f"Telegram:  polling: PUBLIC_URL {public_url} {why}, so Telegram cannot post to it "
        f"(set TELEGRAM_DELIVERY=webhook and an HTTPS PUBLIC_URL for webhooks); {POLLING_NOTE}"
    )
    assert [line for line in err.splitlines() if "WARNING" in line and "PUBLIC_URL" in line] == []


async def test_serve_says_when_polling_or_webhooks_were_asked_for(database_url, backend):
    only_once(backend)
    _, lines, _ = await first_lines_of_serve(4, {"DATABASE_URL": database_url, "TELEGRAM_DELIVERY": "polling"})
    assert lines[3] == (
        f"Telegram:  polling: this server fetches each bot's updates with getUpdates (TELEGRAM_DELIVERY=polling); {POLLING_NOTE}"
    )
    env = {"DATABASE_URL": database_url, "TELEGRAM_DELIVERY": "webhook", "PUBLIC_URL": "https://bots.example:8443"}
    _, lines, _ = await first_lines_of_serve(4, env)
    assert lines[3] == (
        "Telegram:  webhooks: Telegram posts each bot's updates to https://bots.example:8443/webhooks/telegram/… "
        "(TELEGRAM_DELIVERY=webhook)"
    )


async def test_without_public_url_serve_polls_and_the_line_names_the_address_served_not_the_default(
    database_url, backend
):
    only_once(backend)
    port, lines, err = await first_lines_of_serve(4, {"DATABASE_URL": database_url, "PUBLIC_URL": ""})  # not set
    assert lines[3] == (
        f"Telegram:  polling: PUBLIC_URL is not set, and this server's address http://127.0.0.1:{port} is not HTTPS, "
        f"so Telegram cannot post to it (set TELEGRAM_DELIVERY=webhook and an HTTPS PUBLIC_URL for webhooks); {POLLING_NOTE}"
    )
    assert ":8000" not in lines[3]
    assert [line for line in err.splitlines() if "WARNING" in line and "PUBLIC_URL" in line] == []


async def test_without_public_url_the_webhook_warning_names_the_address_served_not_the_default(database_url, backend):
    if backend != "sqlite":
        pytest.skip("the warning does not depend on the database")
    from tests.support.serve_process import ServeProcess

    server = ServeProcess({"DATABASE_URL": database_url, "SCHEDULER_ENABLED": "false", "TELEGRAM_DELIVERY": "webhook"})
    server.env.pop("PUBLIC_URL", None)
    async with server:
        log = await server.stop()
    warnings = [line for line in log.splitlines() if "WARNING" in line and "PUBLIC_URL" in line]
    assert len(warnings) == 1, log
    assert (
        f"PUBLIC_URL is not set, so bots' webhooks would go to this server's address http://127.0.0.1:{server.port}, "
        "which is not HTTPS"
    ) in warnings[0]
    assert ":8000" not in warnings[0]
