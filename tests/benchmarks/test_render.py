"""benchmarks/render.py: the committed tables of docs/performance.md, the benchmarks notebook and
docs/expressiveness.md are what their JSON files render, and a document without its markers is named."""

from pathlib import Path

import pytest

from benchmarks import render


def test_committed_tables_match_their_json():
    stale = [str(doc) for doc, text in render.rendered().items() if doc.read_text() != text]
    assert not stale, f"run python benchmarks/render.py: {stale}"


def test_fill_replaces_only_the_named_block():
    begin, end = render.markers("latency")
    text = f"intro\n{begin}\nold\n{end}\nrest\n"
    assert render.filled(Path("x.md"), text, "\nnew\n", "latency") == f"intro\n{begin}\nnew\n{end}\nrest\n"


def test_missing_markers_name_the_document():
    with pytest.raises(SystemExit, match=r"x\.md: no <!-- tables:begin agents"):
        render.filled(Path("x.md"), "no markers here\n", "body", "agents")
