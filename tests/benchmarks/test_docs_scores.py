"""The score tables of the docs are what their committed JSON renders: each table that follows a
`python benchmarks/scores_table.py benchmarks/results/<file>.json ...` command in a document (up to the next such
command or section) and has the header of a table that command prints must be one of those tables, cell for cell
(docs/protocol.md: tables rendered by a script from committed JSON). Tables with other headers in the same stretch
(latency, per-seed notes) are other material and not checked here."""

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from benchmarks import scores_table

ROOT = Path(__file__).resolve().parents[2]
COMMAND = re.compile(r"^ {4}python benchmarks/scores_table\.py benchmarks/results/\S+\.json(?:.*\\\n)*.*$", re.M)


def tables(text: str) -> list[str]:
    """Returns the markdown tables of a text: runs of consecutive lines that start with '|'."""
    blocks, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line.rstrip())
        elif current:
            blocks.append("\n".join(current))
            current = []
    return blocks


def rendered_sections() -> list[tuple[str, str, str]]:
    """Returns (document, command, text after it up to the next command or '## ' heading) for every command."""
    found = []
    for doc in sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")]):
        text = doc.read_text()
        matches = list(COMMAND.finditer(text))
        matches = [m for m in matches if "results/NAME.json" not in m.group(0)]  # docs/protocol.md's pattern
        for i, match in enumerate(matches):
            end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
            heading = text.find("\n## ", match.end())
            end = min(end, heading) if heading != -1 else end
            found.append((doc.name, match.group(0), text[match.end() : end]))
    return found


SECTIONS = rendered_sections()


def test_the_docs_name_their_score_tables_commands():
    assert len(SECTIONS) >= 10, "docs/results.md renders its score tables with scores_table.py"


@pytest.mark.parametrize(("doc", "command", "after"), SECTIONS, ids=[f"{d}:{c.split()[2]}" for d, c, _ in SECTIONS])
def test_each_documented_table_is_what_its_json_renders(doc, command, after):
    argv = shlex.split(command.replace("\\\n", " "))[2:]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.chdir(ROOT):
        scores_table.main(argv)
    rendered = tables(out.getvalue())
    headers = {t.splitlines()[0] for t in rendered}
    shown = [t for t in tables(after) if t.splitlines()[0] in headers]
    assert shown, f"{doc}: no table rendered by `{' '.join(argv)}` follows it"
    stale = [t.splitlines()[2] for t in shown if t not in rendered]
    assert not stale, f"{doc}: tables after `{' '.join(argv)}` differ from what the JSON renders, first rows: {stale}"
