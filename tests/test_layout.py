"""The package's layout: the library (``latco.<module>``) stands on its own; the paper pipeline
(``latco.paper.<module>``) is built on it and never the other way round."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import latco

ROOT = Path(__file__).resolve().parent.parent

LIBRARY = ("latco.model", "latco.train", "latco.replay", "latco.data", "latco.agent", "latco.planners",
           "latco.solver", "latco.envs", "latco.analytic", "latco.storage")
"""What a user planning with their own world model imports."""

MODULES = [m.name for m in pkgutil.walk_packages(latco.__path__, "latco.")]


def fresh_python(code: str, *args: str) -> dict:
    """The JSON that ``code`` prints last, run in a new interpreter with this checkout first on the path."""
    path = [str(ROOT), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": os.pathsep.join(path)})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_walk_finds_both_sides():
    assert set(LIBRARY) <= set(MODULES)
    assert {"latco.paper", "latco.paper.profiles", "latco.paper.workflow", "latco.planners.latco"} \
        <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_every_module_imports(name):
    importlib.import_module(name)


CHILD = """
import importlib, json, sys
import latco
loaded = {}
for name in json.loads(sys.argv[1]):
    before = set(sys.modules)
    importlib.import_module(name)
    loaded[name] = sorted(m for m in set(sys.modules) - before if m.startswith("latco.paper"))
print(json.dumps({"loaded": loaded, "paper": sorted(m for m in sys.modules if m.startswith("latco.paper"))}))
"""


def test_the_library_never_imports_the_pipeline():
    """Every library module and its submodules, imported in one fresh interpreter, load no ``latco.paper``
    module: planning with collocation needs none of the profiles, producers or readers."""
    names = [m for m in MODULES if m.startswith(LIBRARY)]
    out = fresh_python(CHILD, json.dumps(names))
    assert sorted(out["loaded"]) == sorted(names)
    leaks = {name: paper for name, paper in out["loaded"].items() if paper}
    assert not leaks and not out["paper"], f"library modules that load the paper pipeline: {leaks}"


def test_the_packages_public_names_resolve():
    """What ``import latco`` exposes (``__all__`` if it has one, else its public attributes) resolves,
    names no pipeline module, and the version is the project's."""
    out = fresh_python(
        "import json, latco\n"
        "names = list(getattr(latco, '__all__', [n for n in vars(latco) if not n.startswith('_')]))\n"
        "print(json.dumps({'names': names, 'missing': [n for n in names if not hasattr(latco, n)],\n"
        "                  'version': latco.__version__}))")
    assert not out["missing"], f"latco.__all__ names what latco does not define: {out['missing']}"
    assert not [n for n in out["names"] if n == "paper" or n.startswith("paper.")]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert out["version"] == project["version"]
