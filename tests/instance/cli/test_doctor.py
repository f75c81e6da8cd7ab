"""`dreamloom doctor` through the CLI entry point, on SQLite and PostgreSQL. Its WebFinger
and clock checks talk to real servers on loopback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from sqlalchemy import text

from instance.runtime import Runtime, open_runtime
from tests.instance.cli.conftest import CliInstance
from tests.instance.cli.helpers import follow_ours, in_thread, other_server
from tests.instance_fixtures import serve_live


def _by_name(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {r["check"]: r for r in rows}


def test_doctor_fails_when_the_server_does_not_answer(cli_instance: CliInstance) -> None:
    """With no server running, WebFinger is a FAIL saying the server did not answer and the
    exit code is 1; config, database (at head), media dir and the builtin model are OK; with
    no known remote host the clock check is skipped with a WARN."""
    r = cli_instance.dl("doctor", "--json")
    assert r.exit_code == 1, r.output
    checks = _by_name(json.loads(r.stdout))
    assert checks["webfinger"]["status"] == "FAIL"
    assert "did not answer" in checks["webfinger"]["detail"]
    for name in ("config", "database", "media", "model"):
        assert checks[name]["status"] == "OK", checks[name]
    clock = checks["clock"]
    assert clock["status"] == "WARN" and "no known remote host" in clock["detail"]
    text = cli_instance.dl("doctor")
    assert text.exit_code == 1 and "FAIL webfinger" in " ".join(text.stdout.split())


def test_doctor_config_that_does_not_parse(sqlite_instance: CliInstance) -> None:
    """A config.toml that is not valid TOML is a FAIL line for config and exit code 1."""
    config = sqlite_instance.directory / "config.toml"
    config.write_text(config.read_text() + "\n[instance\n")
    rows = json.loads(sqlite_instance.dl("doctor", "--json").stdout)
    assert [r["check"] for r in rows] == ["config"] and rows[0]["status"] == "FAIL"
    assert sqlite_instance.dl("doctor").exit_code == 1


def test_doctor_passes_with_the_server_up_and_a_peer(
    cli_instance: CliInstance, tmp_path: Path
) -> None:
    """With the instance served on its configured address and a known remote host (a second
    Dreamloom that followed), WebFinger answers and the clock matches the peer's Date."""
    inst = cli_instance
    inst.ok("account", "create", "painter", "--no-pictures")

    async def scenario() -> None:
        async with other_server(tmp_path / "far") as far:
            rt = await open_runtime(inst.settings())
            try:
                async with serve_live(rt):
                    await follow_ours(far, rt, "fan", "painter")
                    r = await in_thread(inst, "doctor", "--json")
            finally:
                await rt.aclose()
        checks = _by_name(json.loads(r.stdout))
        assert checks["webfinger"]["status"] == "OK", checks["webfinger"]
        assert checks["clock"]["status"] == "OK", checks["clock"]
        assert far.settings.host in checks["clock"]["detail"]
        failed = [c for c in checks.values() if c["status"] == "FAIL"]
        assert r.exit_code == (1 if failed else 0), r.output

    asyncio.run(scenario())


def test_doctor_fails_on_an_unmigrated_database_and_an_uncached_hub_model(
    cli_instance: CliInstance,
) -> None:
    """A database whose schema is not at head is a FAIL naming `dreamloom db upgrade`; a hub
    model that is not in the local cache, with the hub offline (the tests set
    HF_HUB_OFFLINE=1), is a FAIL and nothing is downloaded."""
    inst = cli_instance

    async def unstamp(rt: Runtime) -> None:
        async with rt.engine.begin() as conn:
            await conn.execute(text("DELETE FROM alembic_version"))

    inst.db(unstamp)
    config = inst.directory / "config.toml"
    config.write_text(
        config.read_text().replace('model = "builtin:tiny"', 'model = "nobody/no-such-model"')
    )
    r = inst.dl("doctor", "--json")
    assert r.exit_code == 1, r.output
    checks = _by_name(json.loads(r.stdout))
    assert checks["database"]["status"] == "FAIL"
    assert "dreamloom db upgrade" in checks["database"]["detail"]
    assert checks["model"]["status"] == "FAIL"
    assert "not in the local cache" in checks["model"]["detail"]


def test_doctor_clock_check_never_connects_to_a_private_peer_address(
    sqlite_instance: CliInstance,
) -> None:
    """The clock check asks the most recently seen remote host through the SSRF-guarded
    client: a stored remote actor whose URI names a loopback address (an attacker's way to
    make `doctor` send a request inside the network) is refused before any connect while
    allow_private_addresses is off, and the check is a WARN instead."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from instance.storage.models import Account

    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    internal = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=internal.serve_forever, daemon=True).start()
    try:
        inst = sqlite_instance
        port = internal.server_address[1]

        async def add_peer(rt: Runtime) -> None:
            async with rt.sessions() as s, s.begin():
                s.add(
                    Account(
                        username="admin", username_key="admin", domain=f"127.0.0.1:{port}",
                        local=False, uri=f"http://127.0.0.1:{port}/users/admin",
                    )
                )  # fmt: skip

        inst.db(add_peer)
        config = inst.directory / "config.toml"
        text_before = config.read_text()
        assert "allow_private_addresses = true" in text_before
        config.write_text(
            text_before.replace("allow_private_addresses = true", "allow_private_addresses = false")
        )
        checks = _by_name(json.loads(inst.dl("doctor", "--json").stdout))
        assert checks["clock"]["status"] == "WARN", checks["clock"]
        assert hits == []
    finally:
        internal.shutdown()
        internal.server_close()
