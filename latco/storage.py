"""What the library leaves on disk, and how it is read back: one module owns each file format.

``latco.agent.evaluate(..., out_dir=...)`` writes an evaluation folder through ``EvaluationLog`` (in
the paper pipeline ``results/<profile>/offline/<task>/<planner>/`` and
``.../online/<task>/<planner>/seed<k>/eval_<n>/``); it holds

    evaluation.json     what the folder evaluates (task, seed, planner and its options)
    rows.jsonl          one JSON row per finished episode, appended as episodes finish (resume)
    episodes/ep_*.npz   the executed episodes (``latco.data``)
    plans/plans_*.npz   every plan of an episode: planned features, actions, optimizer traces
    table.csv           all rows, written once the last episode has finished (``FINISHED``)

``latco.train`` appends its metrics with ``append_csv_row``. Everything is written atomically
(temporary name, then rename), so a crash leaves either the old file or the new one. The paper
pipeline reads these files through ``latco.paper.results`` and keeps its own records of settings
(``latco.paper.settings``) with ``write_atomic``, ``jsonable`` and ``differences`` from here.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FINISHED = "table.csv"
"""The file an evaluation folder gets when every episode has finished: its rows, in order."""


@dataclass(frozen=True)
class SavedPlan:
    """One re-planning of a saved episode, as written by ``save_plans``."""

    step: int
    """Environment step at which the plan was made."""
    features: np.ndarray
    """(H + 1, F) the planned features, z_1 first (``Plan.features``)."""
    actions: np.ndarray
    """(H, A) the planned actions."""
    trace: dict[str, np.ndarray]
    """Per-iteration optimizer records (``Plan.trace``)."""


def write_atomic(path: Path, write) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it to ``path``.

    The temporary name is unique per call, so processes that write the same file at once (two
    runs reusing one data folder) each rename a whole file instead of one renaming the other's.
    An interrupted write (Ctrl-C, an exception) removes its temporary file; one a hard kill left
    behind (no handler runs) is removed by the next write of ``path`` once it is an hour old."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp{glob.escape(path.suffix)}"):
        try:
            if time.time() - stale.stat().st_mtime > 3600:
                stale.unlink()
        except FileNotFoundError:  # another process finished or removed it meanwhile
            pass
    return path


def jsonable(value: Any) -> Any:
    """``value`` with tuples as lists and dataclasses as dicts: what JSON reads back."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)


def differences(old: Any, new: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Dotted path -> (old, new) for every leaf where two settings (or descriptions) differ."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: dict[str, tuple[Any, Any]] = {}
        for key in sorted(set(old) | set(new), key=str):
            out.update(differences(old.get(key, "<absent>"), new.get(key, "<absent>"), f"{prefix}{key}."))
        return out
    return {} if jsonable(old) == jsonable(new) else {prefix.rstrip("."): (old, new)}


def describe(diffs: Mapping[str, tuple[Any, Any]], limit: int = 8) -> str:
    """``"planners.iterations: 10 -> 7, ..."`` for an error message."""
    shown = [f"{k}: {o!r} -> {n!r}" for k, (o, n) in list(diffs.items())[:limit]]
    return ", ".join(shown) + (f" (and {len(diffs) - limit} more)" if len(diffs) > limit else "")


def append_csv_row(path: Path, fields: Sequence[str], row: dict) -> None:
    """Append ``row``'s ``fields`` to the CSV log at ``path``, writing the header if it is new."""
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        if new:
            writer.writeheader()
        writer.writerow({k: row[k] for k in fields})


def write_table(path: str | os.PathLike, table: pd.DataFrame) -> Path:
    """``table`` as CSV at ``path``, atomically."""
    return write_atomic(Path(path), lambda tmp: table.to_csv(tmp, index=False))


def save_plans(path: str | os.PathLike, steps: Sequence[int], plans: Sequence) -> Path:
    """The plans of an episode (``latco.planners.Plan``, made at env ``steps``) as one .npz."""
    arrays: dict[str, np.ndarray] = {"steps": np.asarray(steps, dtype=np.int64)}
    for i, plan in enumerate(plans):
        arrays[f"{i}_features"] = plan.features.cpu().numpy()
        arrays[f"{i}_actions"] = plan.actions.cpu().numpy()
        for key, value in plan.trace.items():
            arrays[f"{i}_trace_{key}"] = np.asarray(value)
    return write_atomic(Path(path), lambda tmp: np.savez_compressed(tmp, **arrays))


def load_plans(path: str | os.PathLike) -> list[SavedPlan]:
    """The plans ``save_plans`` wrote, in the order they were made."""
    with np.load(path, allow_pickle=False) as npz:
        steps = npz["steps"]
        out = []
        for i, step in enumerate(steps):
            prefix = f"{i}_trace_"
            trace = {k[len(prefix):]: npz[k] for k in npz.files if k.startswith(prefix)}
            out.append(SavedPlan(int(step), npz[f"{i}_features"], npz[f"{i}_actions"], trace))
    return out


class EvaluationLog:
    """The files of one evaluation folder, written episode by episode (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rows_path = self.folder / "rows.jsonl"

    def claim(self, description: dict, defaults: dict | None = None) -> None:
        """Record what this folder evaluates (``evaluation.json``: task, seed, planner and its options);
        a folder that holds an evaluation of something else raises ValueError naming the difference,
        so a re-run with another planner never returns the old rows as its own. ``defaults`` (dotted
        path -> value): options added to the code since the folder was claimed, absent from its
        record, match when they hold these values (their defaults keep what the code did before)."""
        path, description = self.folder / "evaluation.json", jsonable(description)
        if path.exists():
            diffs = differences(json.loads(path.read_text()), description)
            defaults = jsonable(defaults or {})
            diffs = {k: (old, new) for k, (old, new) in diffs.items()
                     if not (old == "<absent>" and k in defaults and defaults[k] == jsonable(new))}
            if diffs:
                raise ValueError(f"{self.folder} holds an evaluation made with other settings "
                                 f"({describe(diffs)}); evaluate into another folder, or delete this one "
                                 "to evaluate anew")
            return
        write_atomic(path, lambda tmp: tmp.write_text(json.dumps(description, indent=1, sort_keys=True)))

    def finished_rows(self) -> dict[int, dict]:
        """Rows of the finished episodes by index; a last line cut short by a crash is dropped
        (that episode runs again)."""
        if not self.rows_path.exists():
            return {}
        text = self.rows_path.read_text()
        complete, _, partial = text.rpartition("\n")
        if partial:
            write_atomic(self.rows_path, lambda tmp: tmp.write_text(complete + "\n" if complete else ""))
        rows = [json.loads(line) for line in complete.splitlines() if line.strip()]
        return {row["episode"]: row for row in rows}

    def episode_path(self, index: int) -> Path:
        from latco.data import episode_path

        return episode_path(self.folder / "episodes", index)

    def plans_path(self, index: int) -> Path:
        return self.folder / "plans" / f"plans_{index:06d}.npz"

    def save(self, row: dict, episode, steps: Sequence[int], plans: Sequence) -> dict:
        """Save episode ``row['episode']`` and its plans, then append ``row`` (with their paths)."""
        from latco.data import save_episode

        index = row["episode"]
        row = {**row, "episode_file": str(save_episode(self.episode_path(index), episode)),
               "plans_file": str(save_plans(self.plans_path(index), steps, plans))}
        with self.rows_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        return row

    def finish(self, table: pd.DataFrame) -> Path:
        """Mark the evaluation finished: every row in ``table.csv``."""
        return write_table(self.folder / FINISHED, table)

    def finish_if_complete(self, episodes: int) -> bool:
        """Write ``table.csv`` if ``rows.jsonl`` holds episodes 0 … ``episodes`` − 1 (folders written
        before evaluations marked their end); True if the evaluation is finished."""
        if (self.folder / FINISHED).exists():
            return True
        from latco.agent import ROW_COLUMNS

        rows = self.finished_rows()
        if sorted(rows) != list(range(episodes)):
            return False
        self.finish(pd.DataFrame([rows[i] for i in range(episodes)], columns=ROW_COLUMNS))
        return True
