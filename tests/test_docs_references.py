"""The repository explains itself: every document the code and docs cite is in the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITED_DOC = re.compile(r"\bdocs/([A-Z_]+\.md)")
SECTION = re.compile(r"docs/LETTA\.md §(\d+)")
OUTSIDE = re.compile(r"DATA_MODEL|\.\./shared|/work/shared")


def _texts() -> dict[Path, str]:
    paths = [*ROOT.glob("lifeboat/**/*.py"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("bench/**/*.py")]
    paths += [*ROOT.glob("docs/*.md"), ROOT / "README.md", ROOT / "BENCHMARKS.md"]
    return {path: path.read_text(encoding="utf-8") for path in paths if path != Path(__file__).resolve()}


def test_cited_documents_exist_and_nothing_points_outside() -> None:
    letta_sections = set(re.findall(r"^## (\d+)\. ", (ROOT / "docs/LETTA.md").read_text(), re.MULTILINE))
    for path, text in _texts().items():
        where = path.relative_to(ROOT)
        assert not OUTSIDE.search(text), f"{where} cites a document outside the repository"
        for name in CITED_DOC.findall(text):
            assert (ROOT / "docs" / name).is_file(), f"{where} cites docs/{name}, which does not exist"
        for number in SECTION.findall(text):
            assert number in letta_sections, f"{where} cites docs/LETTA.md §{number}, which does not exist"
