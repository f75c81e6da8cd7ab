"""config.toml loading: every bad input names the key and the file (issue: foundation)."""

from __future__ import annotations

from pathlib import Path

import pytest

from instance.errors import ConfigError
from instance.settings import load_settings, locate_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_example_config_at_repo_root_loads() -> None:
    root = Path(__file__).resolve().parents[2]
    settings = load_settings(root / "config.toml", env={})
    assert settings.instance.domain
    assert settings.database_url.startswith("sqlite+aiosqlite:///")


def test_defaults(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, '[instance]\ndomain = "Example.COM."\n'), env={})
    assert s.instance.domain == "example.com"
    assert s.instance.scheme == "https"
    assert s.federation.allow_private_addresses is False
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'data' / 'dreamloom.db'}"
    assert s.base_url == "https://example.com"


def test_domain_keeps_port_and_punycodes(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, '[instance]\ndomain = "Bücher.example:8443"\n'), env={})
    assert s.instance.domain == "xn--bcher-kva.example:8443"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[instance]\ndomain = "a.example"\ncolour = "red"\n', "unknown key [instance] colour"),
        ('[instance]\ndomain = "a.example"\n[gpu]\nx = 1\n', "unknown section [gpu]"),
        (
            '[instance]\ndomain = "a.example"\n[server]\nport = "80"\n',
            "[server] port must be an integer",
        ),
        ("[instance]\nscheme = 'http'\n", "[instance] domain is required"),
        ('[instance]\ndomain = "a.example"\nscheme = "ftp"\n', "[instance] scheme must be"),
        ('[instance]\ndomain = "a.example/x"\n', "[instance] domain"),
        ('[instance]\ndomain = "a.example"\n[database]\nurl = "mysql://x"\n', "[database] url"),
        (
            '[instance]\ndomain = "a.example"\n[federation]\nallow_private_addresses = "yes"\n',
            "[federation] allow_private_addresses must be true or false",
        ),
        ("[instance\n", "is not valid TOML"),
    ],
)
def test_bad_config_names_key_and_file(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dreamloom init"):
        load_settings(tmp_path / "nope.toml", env={})


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[instance]\ndomain = "a.example"\n[server]\nport = 8000\n')
    env = {
        "DREAMLOOM_SERVER_PORT": "9001",
        "DREAMLOOM_FEDERATION_ALLOW_PRIVATE_ADDRESSES": "true",
        "DREAMLOOM_INSTANCE_DOMAIN": "b.example",
        "DREAMLOOM_DATABASE_URL": "postgresql+asyncpg://u@127.0.0.1/db",
    }
    s = load_settings(path, env=env)
    assert s.server.port == 9001
    assert s.federation.allow_private_addresses is True
    assert s.instance.domain == "b.example"
    assert s.database_url == "postgresql+asyncpg://u@127.0.0.1/db"


def test_bad_environment_value_names_variable(tmp_path: Path) -> None:
    path = write(tmp_path, '[instance]\ndomain = "a.example"\n')
    with pytest.raises(ConfigError, match="DREAMLOOM_SERVER_PORT must be an integer"):
        load_settings(path, env={"DREAMLOOM_SERVER_PORT": "eighty"})
    with pytest.raises(ConfigError, match="DREAMLOOM_SERVER_COLOUR"):
        load_settings(path, env={"DREAMLOOM_SERVER_COLOUR": "red"})


def test_locate_config_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert locate_config(tmp_path / "x", env={}) == tmp_path / "x" / "config.toml"
    assert locate_config(None, env={"DREAMLOOM_CONFIG": "/srv/d/config.toml"}) == Path(
        "/srv/d/config.toml"
    )
    assert locate_config(None, env={}) == tmp_path / "config.toml"
