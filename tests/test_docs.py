"""The documentation site (``make docs``): it builds with warnings as errors and shows what it should.

One build (about 20 s on 2 cores: the notebooks are rendered, not executed) serves every check.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built by ``sphinx-build -W`` into a temporary folder; fails with Sphinx's output."""
    out = tmp_path_factory.mktemp("site")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"sphinx-build failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return out


def _text(fragment: str) -> str:
    """The visible text of an HTML fragment, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_landing_page_is_the_readme(site: Path) -> None:
    """index.html's title is the README's first heading (the README is the landing page)."""
    heading = next(line for line in README.read_text().splitlines() if line.startswith("# "))
    title = re.sub(r"[`*_]", "", heading[2:]).strip()
    h1 = re.search(r"<h1[^>]*>(.*?)</h1>", (site / "index.html").read_text(), re.S)
    assert h1 is not None, "index.html has no <h1>"
    assert _text(h1.group(1)).rstrip("#").strip() == title


def test_readme_images_are_in_the_site(site: Path) -> None:
    """Every image the README shows from figures/ is copied into the site and shown on the landing page."""
    index = (site / "index.html").read_text()
    for image in re.findall(r"!\[[^\]]*\]\((figures/[^)\s]+)\)", README.read_text()):
        name = Path(image).name
        assert (site / "_images" / name).is_file(), f"{image} was not copied into the site"
        assert f'src="_images/{name}"' in index, f"index.html does not show {image}"


def test_notebook_pages_show_their_figures(site: Path) -> None:
    """Every committed notebook has a page, and the figure notebooks' pages show their images."""
    notebooks = sorted((DOCS / "quick").glob("*.ipynb"))
    assert notebooks, "no executed notebooks in docs/quick/"
    missing = [nb.name for nb in notebooks if not (site / "quick" / f"{nb.stem}.html").is_file()]
    assert not missing, f"notebooks without a page: {missing}"
    pages = {nb.stem: (site / "quick" / f"{nb.stem}.html").read_text() for nb in notebooks}
    image = re.compile(r'<img[^>]+src="\.\./_images/[^"]+\.(png|gif)"')
    images = {stem: image.findall(page) for stem, page in pages.items()}
    assert any(images.values()), "no notebook page shows an image"
    assert any("gif" in found for found in images.values()), "no notebook page shows its GIF"


def test_readme_links_to_docs_are_pages(site: Path) -> None:
    """Every README link to ``docs/x.md`` or ``docs/quick/x.ipynb`` is a page the landing page links to."""
    targets = sorted(set(re.findall(r"\]\(docs/([^)#\s]+)\.(?:md|ipynb)(?:#[^)\s]*)?\)", README.read_text())))
    assert targets, "README.md links to no page in docs/"
    index = (site / "index.html").read_text()
    for target in targets:
        assert (site / f"{target}.html").is_file(), f"README links docs/{target}, which has no page"
        assert f'href="{target}.html' in index, f"the landing page does not link {target}.html"


def test_api_reference_has_every_module(site: Path) -> None:
    """The API reference has a page per listed module, with the module's docstring on it, and lists every
    public module of the package: the library's on one page, the paper pipeline's on the other."""
    import pkgutil

    import latco

    library = re.findall(r"^\s+(latco\.[\w.]+)\s*$", (DOCS / "api" / "library.md").read_text(), re.M)
    pipeline = re.findall(r"^\s+(latco\.[\w.]+)\s*$", (DOCS / "api" / "pipeline.md").read_text(), re.M)
    assert "latco.planners" in library and "latco.paper.workflow" in pipeline
    assert all(m.startswith("latco.paper") for m in pipeline), "a pipeline page lists a library module"
    assert not any(m.startswith("latco.paper") for m in library), "the library page lists the pipeline"
    for module in library + pipeline:
        assert (site / "api" / "generated" / f"{module}.html").is_file(), f"no API page for {module}"
    public = [m.name for m in pkgutil.walk_packages(latco.__path__, "latco.")
              if not any(part.startswith("_") for part in m.name.split("."))]
    missing = [m for m in public if not (site / "api" / "generated" / f"{m}.html").is_file()]
    assert not missing, f"modules without an API page (add them to docs/api/*.md): {missing}"
    planners = (site / "api" / "generated" / "latco.planners.latco.html").read_text()
    assert "LatCoPlanner" in planners
