"""A light `unitcat`: the commands that do not compute import none of the heavy libraries,
every command still shows its help, and the lines `--help` lists are the commands' own.

Which modules a command imported is read from the real CLI in a subprocess: a small
wrapper (below, not part of the product) runs `ingest.cli.main` with the command's
arguments and writes `sorted(sys.modules)` to a file when it exits, however it exits.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from sqlalchemy import Integer, String, Text
from typer.testing import CliRunner

from catalogue.db import migrate, revisions, schema
from catalogue.query import views
from ingest.cli import COMMANDS, INGEST_COMMANDS, app
from ingest.commands.db import app as db_app
from tests.cli import unitcat

HEAVY = ("torch", "torchvision", "h5py", "streamlit", "ray")
#: Not forbidden by name, but a command that only reads needs none of them either.
NOT_FOR_READS = ("pandas", "numpy", "alembic", "sqlalchemy.orm", "catalogue.db.schema")

WRAPPER = """
import sys
out = sys.argv[1]
sys.argv = ["unitcat", *sys.argv[2:]]
try:
    from ingest.cli import main
    main()
finally:
    with open(out, "w") as file:
        file.write("\\n".join(sorted(sys.modules)))
"""


def imported_by(
    tmp_path: Path, database_url: str, *args: str
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `unitcat ARGS` in a subprocess; its result and the modules it had imported."""
    out = tmp_path / "modules.txt"
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(out), *args],
        capture_output=True,
        text=True,
        env={**_env(), "DATABASE_URL": database_url},
        timeout=300,
    )
    return result, set(out.read_text().split())


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "COLUMNS"}


def _roots(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules} | modules


@pytest.mark.parametrize(
    ("args", "commands_loaded"),
    [
        (("query", "select 1"), {"query"}),
        (("runs",), {"runs"}),
        (("runs", "--format", "json"), {"runs"}),
        (("db", "url"), {"db"}),
        (("--help",), set()),
        (("ingest", "--help"), set()),
        (("db", "--help"), {"db"}),
        (("query", "--help"), {"query"}),
        (("ui", "--help"), {"ui"}),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else "",
)
def test_commands_that_do_not_compute_import_no_heavy_library(
    args: tuple[str, ...], commands_loaded: set[str], tmp_path: Path, database_url: str
) -> None:
    result, modules = imported_by(tmp_path, database_url, *args)
    assert result.returncode == 0, result.stderr
    assert "ingest.cli" in modules  # the wrapper did run the CLI
    heavy = _roots(modules) & set(HEAVY)
    assert not heavy, sorted(heavy)
    loaded = {
        m.removeprefix("ingest.commands.") for m in modules if m.startswith("ingest.commands.")
    }
    assert loaded == commands_loaded  # only the command that runs is imported
    if "--help" not in args and args[0] in ("query", "runs"):
        needless = _roots(modules) & set(NOT_FOR_READS)
        assert not needless, sorted(needless)


def test_the_wrapper_sees_a_heavy_import_when_there_is_one(
    tmp_path: Path, database_url: str
) -> None:
    """The check above can fail: a computing command that runs imports torch."""
    result, modules = imported_by(
        tmp_path, database_url, "ingest", "layers", "alexnet", "--weights", "none"
    )
    assert result.returncode == 0, result.stderr
    assert "torch" in modules
    assert "ingest.commands.models" in modules


def test_help_lists_every_command_with_its_registered_line() -> None:
    for args, registry in (((), COMMANDS), (("ingest",), INGEST_COMMANDS)):
        result = unitcat(*args, "--help")
        assert result.returncode == 0, result.stderr
        listed = " ".join(result.stdout.split())
        for name, entry in registry.items():
            assert re.search(rf"│ {re.escape(name)} +", result.stdout), name
            assert " ".join(entry.help.split()) in listed, name
    assert "│ ingest " in unitcat("--help").stdout


def _paths() -> list[tuple[str, ...]]:
    paths = [(name,) for name in COMMANDS] + [("ingest", name) for name in INGEST_COMMANDS]
    db_group = typer.main.get_group(db_app)
    return paths + [("db", name) for name in db_group.commands]


@pytest.mark.parametrize("path", _paths(), ids=" ".join)
def test_every_command_shows_its_own_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"Usage: unitcat {' '.join(path)} [OPTIONS]" in " ".join(result.output.split())
    assert "--help" in result.output


@pytest.mark.parametrize(
    ("group", "registry"),
    [(None, COMMANDS), ("ingest", INGEST_COMMANDS)],
    ids=["unitcat", "ingest"],
)
def test_each_registered_line_is_the_first_paragraph_of_the_commands_help(
    group: str | None, registry: dict
) -> None:
    """The registry's line is what `--help` lists without importing the command; it must
    say what the command's own docstring says."""
    for name, entry in registry.items():
        command = entry.load(name)
        assert command.name == name
        first = (command.help or "").split("\n\n")[0]
        assert " ".join(first.split()) == " ".join(entry.help.split()), name


def test_an_unknown_command_is_refused_with_the_nearest_names() -> None:
    result = unitcat("qurey", "select 1")
    assert result.returncode == 2
    assert "No such command 'qurey'" in result.stderr and "'query'" in result.stderr
    typo = unitcat("ingest", "extrct")
    assert typo.returncode == 2
    assert "'extract'" in typo.stderr


def test_errors_of_a_lazily_loaded_command_are_one_line_with_their_exit_code(
    database_url: str,
) -> None:
    for args, code in ((("runs", "--kind", "bogus"), 2), (("query", "DELETE FROM run"), 2)):
        result = unitcat(*args, env={"DATABASE_URL": database_url})
        assert result.returncode == code, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
        assert "Traceback" not in result.stderr


# ----------------------------------------------- what the light path reads in place of the heavy


def test_the_light_table_declarations_match_the_schema() -> None:
    """`unitcat runs` joins these instead of importing the ORM schema."""
    for light in (views.MODEL_NAME, views.DATASET_NAME, views.RUN_KIND):
        table = schema.Base.metadata.tables[light.name]
        for column in light.columns:
            assert column.name in table.c, (light.name, column.name)
            assert column.type.python_type is table.c[column.name].type.python_type
    assert views.RUN is schema.Run.__table__  # the schema's tables by name, loaded on use
    with pytest.raises(AttributeError):
        views.NO_SUCH_TABLE  # noqa: B018
    assert {type(c.type) for c in views.MODEL_NAME.columns} <= {Integer, Text, String}


def test_the_head_read_from_the_scripts_text_is_alembics() -> None:
    assert migrate.scripts_head() == migrate.head_revision() is not None


def _scripts_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "migrations"
    shutil.copytree(migrate.script_location(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_the_scripts_head_leaves_two_heads_and_computed_ids_to_alembic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = _scripts_copy(tmp_path)
    monkeypatch.setattr(revisions, "script_location", lambda: copy)
    head = migrate.head_revision(scripts=copy)
    branch = copy / "versions" / "9998_branch.py"
    branch.write_text(
        f'revision = "9998"\ndown_revision = "{migrate.revisions(scripts=copy)[-2]}"\n'
        "def upgrade():\n    pass\n\ndef downgrade():\n    pass\n"
    )
    assert migrate.scripts_head() is None  # two heads: Alembic says what is wrong
    branch.write_text(
        f'revision = "9998"\ndown_revision = "{head}"\n'
        "def upgrade():\n    pass\n\ndef downgrade():\n    pass\n"
    )
    assert migrate.scripts_head() == "9998" == migrate.head_revision(scripts=copy)
    branch.write_text(
        f'revision = "99" + "98"\ndown_revision = "{head}"\n'
        "def upgrade():\n    pass\n\ndef downgrade():\n    pass\n"
    )
    assert migrate.scripts_head() is None  # not a literal: not read from the text


def test_a_database_behind_the_scripts_head_is_still_refused(
    engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quick check answers only "at head"; anything else gets the full check's message."""
    from catalogue.errors import SchemaOutOfDate

    copy = _scripts_copy(tmp_path)
    head = migrate.head_revision(scripts=copy)
    (copy / "versions" / "9999_newer.py").write_text(
        f'revision = "9999"\ndown_revision = "{head}"\n'
        "def upgrade():\n    pass\n\ndef downgrade():\n    pass\n"
    )
    monkeypatch.setattr(revisions, "script_location", lambda: copy)
    with pytest.raises(SchemaOutOfDate, match="needs 9999"):
        migrate.ensure_current(engine)
