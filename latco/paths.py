"""Where things live: the repository root, figures and results, independent of the working directory."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The repository root (latco is installed editable, so this is the checkout)."""

FIGURES = ROOT / "figures"
RESULTS = ROOT / "results"
