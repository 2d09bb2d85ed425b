"""The README's configuration table, written from the settings' declarations (`app/settings.py`).

    python -m app.settings_doc           prints the table
    python -m app.settings_doc --write   puts it in README.md, in place of the table there (make readme)

`tests/test_settings.py` fails while the README's table differs from this one.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from app.settings import Settings, declared

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Configuration"
HEADER = ("| variable | default | meaning |", "| --- | --- | --- |")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def configuration_table() -> str:
    """One row for each setting with help text, in the order they are declared."""
    rows = list(HEADER)
    for _, setting in declared(Settings):
        if setting.help:
            variables = ", ".join(f"`{name}`" for name in setting.env)
            rows.append(f"| {variables} | {_cell(setting.shown)} | {_cell(setting.help)} |")
    return "\n".join(rows) + "\n"


def table_span(readme: str) -> tuple[int, int]:
    """Where the table of the README's Configuration section starts and ends (its last newline
    included). ValueError when the section or its table is not found."""
    section = re.search(f"^{SECTION}\n", readme, re.MULTILINE)
    if section is None:
        raise ValueError(f"no {SECTION!r} section in the README")
    start = readme.find(f"\n{HEADER[0]}\n", section.end() - 1) + 1
    following = readme.find("\n## ", section.end() - 1)
    if start == 0 or 0 <= following < start:
        raise ValueError(f"no table in the README's {SECTION!r} section")
    end = start
    while readme.startswith("|", end):
        end = readme.index("\n", end) + 1
    return start, end


def with_configuration_table(readme: str) -> str:
    """`readme` with its configuration table replaced by the one the declarations give."""
    start, end = table_span(readme)
    return readme[:start] + configuration_table() + readme[end:]


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        text = README.read_text(encoding="utf-8")
        written = with_configuration_table(text)
        if written != text:
            README.write_text(written, encoding="utf-8")
        print(f"{README}: the configuration table {'rewritten' if written != text else 'was up to date'}")
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    print(configuration_table(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
