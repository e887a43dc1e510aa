"""The documentation stays inside the repository: a short README, and no doc or docstring citing a file outside it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Files that used to live beside the repository (../shared/): their content is docs/design.md and docs/failsafe.md.
OUTSIDE = re.compile(r"\b(LIVE|DESIGN|STYLE)\.md\b|\.\./shared/(?!data\b)")
SOURCES = ("twin", "controllers", "scenarios", "benchmarks", "hardware", "tests", "docs", "examples", "scripts")


def repository_texts() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "mkdocs.yml", ROOT / "run-tests", ROOT / "pems", ROOT / ".ci" / "run"]
    for folder in SOURCES:
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".md", ".toml", ".sh"}]
    return [p for p in files if p.is_file() and p != Path(__file__).resolve()]


def test_the_readme_is_at_most_8_kb():
    assert (ROOT / "README.md").stat().st_size <= 8 * 1024


def test_no_doc_or_docstring_cites_a_file_outside_the_repository():
    hits = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
            for path in repository_texts()
            for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1)
            if OUTSIDE.search(line)]
    assert not hits, "\n".join(hits)


def test_every_page_the_readme_maps_exists():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pages = re.findall(r"`(docs/[\w./-]+)`", readme)
    assert pages and not [page for page in pages if not (ROOT / page).exists()]
