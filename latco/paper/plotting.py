"""Figures shared by the notebooks: image strips of episodes, saved the same way everywhere.

Images are drawn pixel for pixel (nearest-neighbour), so a figure shows exactly what the
agent sees.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from latco.data import Episode
from latco.paper.profiles import Profile
from latco.storage import write_atomic, write_table


def image_strip(
    images: np.ndarray | Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    axes: Sequence[plt.Axes] | None = None,
    size: float = 1.6,
) -> Figure:
    """Draw `images` `(N, S, S, 3)` side by side, each under its title; returns the figure."""
    images = list(images)
    if axes is None:
        _, axes = plt.subplots(1, len(images), figsize=(size * len(images), size * 1.15))
        axes = np.atleast_1d(axes)
    for i, (ax, image) in enumerate(zip(axes, images, strict=True)):
        ax.imshow(image, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    return axes[0].figure


def episode_frames(episode: Episode, steps: Sequence[int] | None = None) -> list[int]:
    """Which frames to show: `steps`, or the start, middle and end of the episode."""
    if steps is None:
        steps = [0, len(episode) // 2, len(episode)]
    return [int(t) for t in steps]


def task_strips(
    episodes: dict[str, Episode], steps: Sequence[int] | None = None, title: str | None = None
) -> Figure:
    """One row per task: frames of its episode (default start, middle, end), titled
    with the step and whether the task is solved there."""
    rows = len(episodes)
    columns = len(episode_frames(next(iter(episodes.values())), steps))
    fig, axes = plt.subplots(rows, columns, figsize=(1.7 * columns + 0.4, 1.85 * rows), squeeze=False)
    for row, (task, episode) in enumerate(episodes.items()):
        frames = episode_frames(episode, steps)
        solved = [t > 0 and bool(episode.success[t - 1]) for t in frames]
        titles = [f"t={t}" + (" (success)" if s else "") for t, s in zip(frames, solved, strict=True)]
        image_strip(episode.images[frames], titles, axes[row])
        axes[row, 0].set_ylabel(task, fontsize=10)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def provenance_fields(profile: str | Profile) -> dict[str, str]:
    """{"profile", "commit", "date"}: what made a figure or table (commit "unknown" outside git).

    Given a ``Profile`` with overrides, "profile" names them too: ``quick (planners.latco.iterations=7)``."""
    import datetime

    from latco.paper.settings import code_commit

    name = profile if isinstance(profile, str) else profile.name
    overrides = {} if isinstance(profile, str) else profile.overrides
    if overrides:
        name += " (" + ", ".join(f"{k}={v}" for k, v in overrides.items()) + ")"
    commit = code_commit()
    commit = commit if commit == "unknown" else commit[:7] + ("-dirty" if commit.endswith("-dirty") else "")
    return {"profile": name, "commit": commit, "date": datetime.date.today().isoformat()}


def provenance(profile: str | Profile) -> str:
    """"profile quick · commit 1a2b3c4 · 2026-11-24": the line every figure and table states."""
    fields = provenance_fields(profile)
    return f"profile {fields['profile']} · commit {fields['commit']} · {fields['date']}"


def stamp(fig: Figure, profile: str | Profile) -> Figure:
    """Write the provenance line in the figure's bottom-left corner."""
    fig.text(0.005, 0.003, provenance(profile), fontsize=6, color="gray", ha="left", va="bottom")
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Save ``fig`` to ``path`` (folders made as needed), and a PDF beside a PNG; returns ``path``.

    Each file is written to a temporary name and renamed, so a killed run leaves no half file.
    """
    path = Path(path)
    targets = [path] + ([path.with_suffix(".pdf")] if path.suffix == ".png" else [])
    for target in targets:
        write_atomic(target, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight"))
    return path


def save_table(table: pd.DataFrame, stem: str | os.PathLike, profile: str | Profile) -> tuple[Path, Path]:
    """``<stem>.csv`` (with ``profile``/``commit``/``date`` columns) and ``<stem>.md`` (a Markdown
    table with the provenance line under it), written atomically."""
    stem = Path(stem)
    line = provenance(profile)
    csv = write_table(stem.with_suffix(".csv"), table.assign(**provenance_fields(profile)))
    md = write_atomic(stem.with_suffix(".md"),
                      lambda tmp: tmp.write_text(markdown_table(table) + f"\n\n_{line}_\n"))
    return csv, md


EXTRAPOLATED = " extrapolated"
"""A boolean column ``"<col> extrapolated"`` marks which cells of ``<col>`` were extrapolated."""


def markdown_table(table: pd.DataFrame, digits: int = 3) -> str:
    """``table`` as Markdown for people: floats to ``digits`` significant digits, and each column
    with a boolean ``"<col> extrapolated"`` partner shown with a * on its extrapolated cells (the
    partner dropped, a footnote added). The CSV keeps every digit and column."""
    shown = table.copy()
    flagged = [c for c in table.columns if c.endswith(EXTRAPOLATED) and c[: -len(EXTRAPOLATED)] in table]
    for column in shown.columns:
        if column in flagged or not pd.api.types.is_float_dtype(shown[column]):
            continue
        marks = table[column + EXTRAPOLATED] if column + EXTRAPOLATED in flagged else None
        shown[column] = [f"{v:.{digits}g}" + ("*" if marks is not None and bool(marks.iloc[i]) else "")
                         for i, v in enumerate(table[column])]
    text = shown.drop(columns=flagged).to_markdown(index=False, disable_numparse=True)
    if flagged:
        text += "\n\n\\* extrapolated: timed over fewer iterations and scaled linearly"
    return text


# ------------------------------------------------------------------------------ world model
def training_curves(metrics: pd.DataFrame, title: str = "") -> Figure:
    """Loss terms of world-model training (``metrics.csv``) against the gradient step."""
    terms = [("image_nll", "image NLL"), ("reward_nll", "reward NLL"), ("kl", "KL (free nats clip it)")]
    fig, axes = plt.subplots(1, len(terms), figsize=(3.4 * len(terms), 2.6))
    for ax, (key, label) in zip(axes, terms, strict=True):
        ax.plot(metrics["step"], metrics[key])
        ax.set_xlabel("gradient step")
        ax.set_title(label, fontsize=9)
        if key != "kl" and (metrics[key] > 0).all():
            ax.set_yscale("log")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def prediction_strip(
    true_images: np.ndarray, pred_images: np.ndarray, steps: Sequence[int], title: str = ""
) -> Figure:
    """True frames (top) above the model's frames (bottom) at ``steps``."""
    fig, axes = plt.subplots(2, len(steps), figsize=(1.5 * len(steps), 3.4), squeeze=False)
    image_strip([true_images[t] for t in steps], [f"t={t + 1}" for t in steps], axes=axes[0])
    image_strip([pred_images[t] for t in steps], axes=axes[1])
    axes[0, 0].set_ylabel("true", fontsize=9)
    axes[1, 0].set_ylabel("model", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def reward_scatter(pred: np.ndarray, true: np.ndarray, title: str = "") -> Figure:
    """Predicted against true reward, with the identity line."""
    fig, ax = plt.subplots(figsize=(3.2, 3.0))
    ax.scatter(true, pred, s=6, alpha=0.5)
    lo, hi = min(true.min(), pred.min()), max(true.max(), pred.max())
    ax.plot([lo, hi], [lo, hi], color="gray", lw=1, ls="--")
    ax.set_xlabel("true reward")
    ax.set_ylabel("predicted reward")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def show(path: str | os.PathLike):
    """The saved PNG at ``path`` as a notebook output, so an executed notebook shows the figure inline.

    Figures made as ``matplotlib.figure.Figure`` objects (``latco.paper.figures``) are not drawn by Jupyter's
    inline backend (it only draws pyplot's figures); the saved file is exactly what ``figures/`` holds.
    """
    from IPython.display import Image

    return Image(filename=str(path))
