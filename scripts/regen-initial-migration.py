"""Pre-release only: rewrite migration 0001 from the current models (nothing is deployed yet).

Once a release ships, schema changes get new migrations instead
(`alembic revision --autogenerate` against a database at head).
"""

import asyncio
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command

from instance.storage.db import make_engine
from instance.storage.migrate import MIGRATIONS, alembic_config


async def main() -> None:
    for old in (MIGRATIONS / "versions").glob("0001_*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'empty.db'}"
        engine = make_engine(url)
        cfg = alembic_config(url)

        def run(conn: object) -> None:
            cfg.attributes["connection"] = conn
            command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")

        async with engine.begin() as conn:
            await conn.run_sync(run)
        await engine.dispose()


def tidy() -> None:
    (path,) = (MIGRATIONS / "versions").glob("0001_*.py")
    text = path.read_text()
    text = re.sub(r"Revises: *\n", "Revises:\n", text)
    text = re.sub(r"Create Date: .*", "Create Date: regenerated from the models", text)
    path.write_text(text)
    ruff = Path(sys.executable).parent / "ruff"
    subprocess.run([ruff, "check", "--fix", "-q", path], check=False)
    subprocess.run([ruff, "format", "-q", path], check=True)


if __name__ == "__main__":
    asyncio.run(main())
    tidy()
