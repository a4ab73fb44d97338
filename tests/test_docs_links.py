"""Every relative link in the README and the docs leads somewhere: the file exists, and a `#fragment` names a heading
of the target document (as GitHub makes anchors from headings). Dated sections are often renamed or moved when a
measurement is redone, and a reader who follows a dead link from a results table loses the source of a number."""

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", ROOT / "benchmarks" / "README.md", *ROOT.glob("docs/**/*.md")])
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")  # [text](target), not images' ![alt](file) (checked below too)
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markdown marks and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = text.strip().lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    """The anchors of a document's headings, with GitHub's -1, -2 ... for repeated ones."""
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", doc.read_text()).splitlines():
        if match := re.match(r"#{1,6} +(.*?) *#*$", line):
            base = slug(match.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(doc: Path) -> list[str]:
    text = FENCE.sub("", doc.read_text())
    text = re.sub(r"^ {4}.*$", "", text, flags=re.M)  # indented code blocks: commands, not links
    return [t for t in LINK.findall(text) + IMAGE.findall(text) if not re.match(r"[a-z]+:", t)]


def test_slug_follows_githubs_rule():
    assert slug("The online preset at 300k env steps (2026-12-07)") == "the-online-preset-at-300k-env-steps-2026-12-07"
    assert slug("What makes SSCP learn online: TD3's recipe") == "what-makes-sscp-learn-online-td3s-recipe"
    assert slug("`--online-overlap`: the host acts") == "--online-overlap-the-host-acts"


def broken_links(doc: Path) -> list[str]:
    """Returns 'target: why' for each relative link of doc that leads nowhere."""
    broken = []
    for target in links(doc):
        path, _, fragment = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            broken.append(f"{target}: no file {dest.name} in {dest.parent}")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target}: no heading with that anchor in {dest.name}")
    return broken


def test_a_dead_link_or_anchor_is_found(tmp_path):
    (tmp_path / "other.md").write_text("# Title\n## A section (2026-12-07)\n## A section (2026-12-07)\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "[ok](other.md#a-section-2026-12-07) [ok](other.md#a-section-2026-12-07-1) [ok](#mine) [web](https://x.org/#y)\n"
        "# Mine\n[bad](other.md#a-section) [bad](missing.md) ![bad](missing.png)\n\n    [code](not-a-link.md)\n"
    )
    assert [b.split(":")[0] for b in broken_links(doc)] == ["other.md#a-section", "missing.md", "missing.png"]


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_relative_links_resolve(doc):
    broken = broken_links(doc)
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)
