"""The README's Python blocks run as written (a newcomer copies them first)."""

import re

import pytest

from latco.paper.paths import ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_the_readme_has_python_blocks():
    assert BLOCKS, "README.md lost its Python examples"


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_block_runs(block, capsys):
    exec(compile(block, "README.md", "exec"), {})


README = (ROOT / "README.md").read_text()


def test_the_readme_is_a_newcomers_path():
    lines = README.splitlines()
    assert len(README) <= 15_000, f"README.md is {len(README)} characters; move detail to docs/"
    assert "make paper" in "\n".join(lines[:40]) and "make test" in "\n".join(lines[:40])
    from latco.paper.tables import README_START

    assert any(README_START in line for line in lines[:120]), "the headline results moved down"


def test_the_readme_headline_is_the_workflows_tables():
    from latco.paper.paths import FIGURES
    from latco.paper.tables import README_END, README_START, readme_headline

    block = README[README.index(README_START):README.index(README_END) + len(README_END)]
    assert block == readme_headline(FIGURES), "run `python -m latco.paper.tables README.md` after a rebuild"


def test_every_page_the_readme_links_exists():
    links = re.findall(r"\]\(((?:docs|figures)/[^)#]*)", README)
    assert links
    for link in links:
        assert (ROOT / link).exists(), link


def test_no_document_refers_to_notes_a_reader_does_not_have():
    pattern = re.compile(r"the issue|issue's|SPEC|NOTES")
    roots = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "docs").rglob("*.ipynb")]
    for folder in ("latco", "notebooks", "benchmarks", "studies"):
        roots += [p for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".ipynb", ".md"}]
    hits = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in roots for m in pattern.finditer(p.read_text())]
    assert not hits, hits
