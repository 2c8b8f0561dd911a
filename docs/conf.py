"""Sphinx configuration of the latco site (``make docs`` builds it into docs/_build/html).

The site is the README (the landing page), the topic pages beside this file, the executed
notebooks of the last ``quick`` rebuild (docs/quick/, rendered as committed: nothing is
executed, so the site shows exactly what the rebuild printed and drew) and an API reference
generated from the docstrings.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# latco is installed editable in .venv; the path makes a plain checkout work too
sys.path.insert(0, str(ROOT))

import latco  # noqa: E402  (after the path: the version of the checked-out package)

project = "latco"
version = release = latco.__version__

extensions = [
    "myst_nb",  # Markdown (MyST) pages and .ipynb notebooks; brings myst_parser
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",  # "[source]" links from the API reference to the highlighted code
]

root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
templates_path = ["_templates"]

# --- Markdown and notebooks --------------------------------------------------------------------
# Rebuilding the notebooks takes the `make paper` workflow (hours); the site shows their committed outputs.
nb_execution_mode = "off"
# `[text](page.md#a-heading)` links (README -> docs/performance.md#how-long-a-rebuild-takes) need
# slugs for the headings down to ###.
myst_heading_anchors = 3
# The docstrings write inline code as ``code`` and sometimes as `code` (a reST "title reference",
# in italics): show both as code.
default_role = "code"

# No warning is suppressed: every page, notebook and docstring builds clean under -W.

# --- API reference -----------------------------------------------------------------------------
autosummary_generate = True  # one page per module under docs/api/generated/ (ignored by git)
autosummary_imported_members = False  # a re-exported name is documented where it is defined
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True  # defaults as written in the source, not their evaluated repr
# Document what a module defines, not what its __all__ re-exports (that is documented where it is
# defined), so no object is described twice.
autodoc_default_options = {"ignore-module-all": True}


def prune_stale_api_pages(folder: Path = DOCS / "api" / "generated") -> list[str]:
    """Delete the generated pages of modules this checkout no longer has (a module moved or removed
    since the last build): autosummary writes pages but never removes one, and a stale page fails the
    -W build of a checkout that built the site before (its module does not import, or one imported
    from another install documents its objects twice)."""
    stale = []
    for page in sorted(folder.glob("latco*.rst")):
        try:
            spec = importlib.util.find_spec(page.stem)
        except ImportError:  # a parent that is no longer a package
            spec = None
        origin = getattr(spec, "origin", None)
        if origin is None or not Path(origin).resolve().is_relative_to(ROOT):
            page.unlink()
            stale.append(page.stem)
    return stale


prune_stale_api_pages()

# --- HTML --------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "latco"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_depth": 3,
    "use_edit_page_button": False,
}
toc_object_entries_show_parents = "hide"  # "On this page": `plan()`, not `LatCoPlanner.plan()`
html_show_sourcelink = False  # the sources are the repository's own Markdown and notebooks

# --- the notebooks' index ----------------------------------------------------------------------
NOTEBOOKS_DOC = "notebooks"
# (file name prefixes, caption): one toctree per step of the workflow. The notebooks of a step (01-04)
# share one title ("Online training (Algorithm 1)"), so their entries are titled by task, planner, seed.
NOTEBOOK_GROUPS = [
    (("00", "01"), "Tasks and offline data (00, 01)"),
    (("02",), "World models (02)"),
    (("03",), "Offline planning: Tables 2 and 3 (03)"),
    (("04",), "Online training: Table 1 (04)"),
    (("1",), "Figures and tables (10-14)"),
]
TASK_NAMES = {"obstacle": "Obstacle", "reach": "Sawyer Reach", "push": "Sawyer Push"}
PLANNER_NAMES = {"latco": "LatCo", "cem": "CEM", "gd": "GD", "mppi": "MPPI", "icem": "iCEM"}
KIND_NAMES = {"01": "Data", "02": "World model", "03": "Offline", "04": "Online"}


def notebook_entry(stem: str) -> str:
    """The toctree entry of notebook ``stem``: titled by its task, planner and seed where it has one.

    Notebooks of one step share their title (the same notebook run per task, planner and seed),
    so their file name, which holds those, is what tells them apart in the navigation.
    """
    parts = stem.split("_")
    task = next((TASK_NAMES[p] for p in parts if p in TASK_NAMES), None)
    if task is None or parts[0] not in KIND_NAMES:
        return f"quick/{stem}"  # a notebook with a title of its own (00, 10-14)
    words = [task] + [PLANNER_NAMES[p] for p in parts if p in PLANNER_NAMES]
    words += [f"seed {p.removeprefix('seed')}" for p in parts if re.fullmatch(r"seed\d+", p)]
    return f"{parts[0]} {KIND_NAMES[parts[0]]}: {', '.join(words)} <quick/{stem}>"


def notebook_toctrees(notebooks: list[Path]) -> str:
    """MyST toctrees of ``notebooks``, one per step of the workflow, sorted by file name."""
    stems = sorted(p.stem for p in notebooks)
    blocks, placed = [], set()
    for prefixes, caption in NOTEBOOK_GROUPS:
        group = [s for s in stems if s.startswith(prefixes) and s not in placed]
        placed.update(group)
        if group:
            entries = "\n".join(notebook_entry(s) for s in group)
            blocks.append(f"```{{toctree}}\n:caption: {caption}\n:maxdepth: 1\n\n{entries}\n```")
    rest = [s for s in stems if s not in placed]
    if rest:  # a notebook added later still gets a page (and no "not in any toctree" warning)
        entries = "\n".join(f"quick/{s}" for s in rest)
        blocks.append(f"```{{toctree}}\n:caption: Other notebooks\n:maxdepth: 1\n\n{entries}\n```")
    return "\n\n".join(blocks)


def add_notebook_toctrees(app: Sphinx, docname: str, source: list[str]) -> None:
    """Append the notebooks' toctrees to the notebooks' index page (docs/notebooks.md) as it is read."""
    if docname == NOTEBOOKS_DOC:
        source[0] += "\n\n" + notebook_toctrees(list((DOCS / "quick").glob("*.ipynb")))


def reread_notebook_index(
    app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    """Re-read the notebooks' index on every build: its toctrees follow the files in docs/quick/."""
    return [NOTEBOOKS_DOC]


# README links point into the repository; a few targets are folders, which have no page of their own.
README_LINKS = {"docs/quick/": "docs/notebooks.md", "docs/quick": "docs/notebooks.md"}


def readme_folder_links(app: Sphinx, relative_path: Path, parent_docname: str, content: list[str]) -> None:
    """Point README links to a folder (``[docs/quick/](docs/quick)``) at that folder's page in the site."""
    if Path(relative_path).name != "README.md":
        return
    for target, page in README_LINKS.items():
        content[0] = content[0].replace(f"]({target})", f"]({page})")


def setup(app: Sphinx) -> dict[str, bool]:
    """Register the hooks above (Sphinx calls this for conf.py like for an extension)."""
    app.connect("source-read", add_notebook_toctrees)
    app.connect("env-get-outdated", reread_notebook_index)
    app.connect("include-read", readme_folder_links)
    return {"parallel_read_safe": True}
