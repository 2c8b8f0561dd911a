"""Tables 1-3 from evaluation rows: mean ± standard error, with the number of runs or episodes.

Standard error = sample standard deviation (ddof 1) / √n; with n = 1 it is undefined and shown as
"n/a", never as 0. Success rates also get a 95 % bootstrap interval (percentile method over
resampled episodes), which, unlike mean ± s.e., stays inside [0, 1] and is not symmetric when
nearly every episode fails or succeeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd


def mean_se(values: pd.Series | np.ndarray) -> tuple[float, float, int]:
    """(mean, standard error, n) of the finite values; se is NaN for n < 2."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return float("nan"), float("nan"), 0
    se = float(v.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return float(v.mean()), se, n


def bootstrap_ci(
    values: pd.Series | np.ndarray, level: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of the finite ``values`` (NaN, NaN if none).

    ``resamples`` resamples of n values with replacement, drawn at once; seeded, so a table is
    the same every time it is rebuilt.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(resamples, len(v)))].mean(1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def fmt_ci(values: pd.Series | np.ndarray, digits: int = 2) -> str:
    """"[0.80, 0.95]": the 95 % bootstrap interval of the mean ("n/a" without values)."""
    low, high = bootstrap_ci(values)
    return "n/a" if np.isnan(low) else f"[{low:.{digits}f}, {high:.{digits}f}]"


def fmt(values: pd.Series | np.ndarray, digits: int = 2) -> str:
    """"0.32 ± 0.07" (or "0.32 ± n/a" for a single value)."""
    m, se, n = mean_se(values)
    if n == 0:
        return "n/a"
    return f"{m:.{digits}f} ± " + ("n/a" if np.isnan(se) else f"{se:.{digits}f}")


PAPER_EXECUTION = "as the paper"
"""Table 2's ``execution`` of the paper's protocol: each plan of H steps executed for T_cache steps
(Obstacle: one plan of 30 steps, executed blind)."""


def closed_loop_label(t_cache: int) -> str:
    """Table 2's ``execution`` of a closed-loop evaluation (``Profile.closed_loop``)."""
    return f"re-plan every {t_cache} steps (beyond the paper)"


def _models(table: pd.DataFrame) -> list[pd.DataFrame]:
    """The table's rows per world model (``model_seed`` column; one model if it has none)."""
    if "model_seed" not in table:
        return [table]
    return [group for _, group in table.groupby("model_seed", sort=True)]


def _execution_rows(rows: Mapping[tuple[str, str], pd.DataFrame],
                    closed_loop: Mapping[tuple[str, str, int], pd.DataFrame] | None):
    """(task, planner, execution label, table): the paper's rows, each task's closed-loop rows after it."""
    closed_loop = closed_loop or {}
    for task in dict.fromkeys(task for task, _ in rows):
        for (t, planner), table in rows.items():
            if t == task:
                yield task, planner, PAPER_EXECUTION, table
        for (t, planner, t_cache), table in closed_loop.items():
            if t == task:
                yield task, planner, closed_loop_label(t_cache), table


def offline_table(rows: Mapping[tuple[str, str], pd.DataFrame],
                  closed_loop: Mapping[tuple[str, str, int], pd.DataFrame] | None = None) -> pd.DataFrame:
    """Table 2: per (task, planner) evaluation rows (``latco.agent.evaluate``) → success rate, final
    distance to the goal and return (mean ± s.e.), and seconds per plan.

    Rows with a ``model_seed`` column (``latco.paper.results.offline_tables``) pool the evaluations of
    several world models trained on the same data: ``success`` is then the mean ± s.e. over the
    models' success rates (with one model: over episodes), ``success per model`` lists them, and the
    95 % bootstrap interval is over all the episodes pooled. ``closed_loop`` ((task, planner,
    T_cache) → rows, beyond the paper) adds rows whose ``execution`` says how they were run.
    """
    out = []
    for task, planner, execution, table in _execution_rows(rows, closed_loop):
        models = _models(table)
        per_model = [m["success"].astype(float).mean() for m in models]
        success = fmt(per_model) if len(models) > 1 else fmt(table["success"].astype(float))
        out.append({"task": task, "planner": planner, "execution": execution, "models": len(models),
                    "episodes": len(table), "success": success,
                    "success 95 % CI": fmt_ci(table["success"].astype(float)),
                    "success per model": ", ".join(f"{v:.2f}" for v in per_model),
                    "final distance": fmt(table["final_distance"]),
                    "return": fmt(table["return"], 1),
                    "s / plan": f"{table['plan_seconds'].mean():.2f}"})
    return pd.DataFrame(out)


def predicted_vs_achieved(
    rows: Mapping[tuple[str, str], pd.DataFrame],
    closed_loop: Mapping[tuple[str, str, int], pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Table 3: the model's predicted reward of the executed plans against the reward achieved,
    summed over each episode's plans, mean ± s.e. over episodes (of every model, pooled); the
    closed-loop evaluations (``offline_table``) as their own rows."""
    out = []
    for task, planner, execution, table in _execution_rows(rows, closed_loop):
        gap = table["achieved_reward"] - table["predicted_reward"]
        out.append({"task": task, "planner": planner, "execution": execution, "models": len(_models(table)),
                    "episodes": len(table),
                    "predicted": fmt(table["predicted_reward"], 1),
                    "achieved": fmt(table["achieved_reward"], 1),
                    "achieved − predicted": fmt(gap, 1)})
    return pd.DataFrame(out)


def online_table(runs: Mapping[tuple[str, str, int], pd.DataFrame],
                 protocols: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Table 1: per (task, planner), the first and the last evaluation of each seed's online run
    (``latco.paper.online.online_evaluations``): mean ± s.e. over runs, the 95 % bootstrap interval over
    runs (n/a for a single run: one run says nothing about the spread), each run's last success,
    and the number of runs. ``protocols`` (task -> label, ``OnlineConfig.protocol``) adds a column
    saying how each task's runs started: from scratch, or offline → online (the first evaluation is
    then the offline model's). "success (first eval)" is the evaluation at episode 0, n/a where the
    runs skipped it (``OnlineConfig.eval_at_start``; Table 2 has the offline model's success)."""
    grouped: dict[tuple[str, str], list[pd.DataFrame]] = {}
    for (task, planner, _seed), evals in runs.items():
        if len(evals):
            grouped.setdefault((task, planner), []).append(evals.sort_values("episodes_collected"))
    out = []
    for (task, planner), evals in grouped.items():
        first = pd.DataFrame([e.iloc[0] for e in evals])
        last = pd.DataFrame([e.iloc[-1] for e in evals])
        out.append({"task": task, "planner": planner,
                    **({"protocol": protocols.get(task, "")} if protocols is not None else {}),
                    "runs": len(evals),
                    "episodes collected": int(last["episodes_collected"].min()),
                    # a run not evaluated at episode 0 (``eval_at_start`` off) has no first value
                    "success (first eval)": (fmt(first["success"]) if (first["episodes_collected"] == 0).all()
                                             else "n/a"),
                    "success (last eval)": fmt(last["success"]),
                    "success 95 % CI (runs)": fmt_ci(last["success"]) if len(evals) > 1 else "n/a",
                    "success per run": ", ".join(f"{v:.2f}" for v in last["success"]),
                    "final distance (last eval)": fmt(last["final_distance"]),
                    "return (last eval)": fmt(last["return"], 1)})
    return pd.DataFrame(out)


README_START = "<!-- headline results: generated by `python -m latco.paper.tables README.md`; do not edit -->"
README_END = "<!-- end of headline results -->"

_PLANNER_NAMES = {"latco": "LatCo", "cem": "CEM", "gd": "GD"}


def readme_headline(figures_dir: str | Path) -> str:
    """The README's results table, made from the workflow's ``table2_offline.csv`` and
    ``table1_online.csv`` in ``figures_dir``: per task, LatCo's, CEM's and GD's success offline
    (Table 2, executed as the paper does) and at the last online evaluation (Table 1), with the
    counts behind each number and the commit and date of the rebuild that made them."""
    figures_dir = Path(figures_dir)
    # as text: a commit such as 49e7792 would otherwise be read as the float 4.9e7793 (inf)
    as_text = {"commit": str, "date": str}
    offline = pd.read_csv(figures_dir / "table2_offline.csv", dtype=as_text)
    online = pd.read_csv(figures_dir / "table1_online.csv", dtype=as_text)
    if "execution" in offline:
        offline = offline[offline["execution"] == PAPER_EXECUTION]
    planners = [p for p in _PLANNER_NAMES if p in set(offline["planner"])]
    lines = ["| task | experiment | " + " | ".join(_PLANNER_NAMES[p] for p in planners) + " |",
             "|---|---|" + "---|" * len(planners)]
    for task in dict.fromkeys(offline["task"]):
        rows = offline[offline["task"] == task].set_index("planner")
        models = int(rows["models"].iloc[0]) if "models" in rows else 1
        what = f"offline, {int(rows['episodes'].iloc[0])} episodes"
        what += f" on {models} models" if models > 1 else ""
        cells = [f"{rows.loc[p, 'success']} {rows.loc[p, 'success 95 % CI']}" for p in planners]
        lines.append(f"| {task.capitalize()} | {what} (Table 2) | " + " | ".join(cells) + " |")
        runs = online[online["task"] == task].set_index("planner")
        if len(runs):
            protocol = runs["protocol"].iloc[0] if "protocol" in runs else "online"
            count = int(runs["runs"].iloc[0])
            cells = [str(runs.loc[p, "success (last eval)"]).replace(" ± n/a", "") if p in runs.index else "–"
                     for p in planners]
            runs_text = f"{count} run{'s' if count > 1 else ''} per planner"
            lines.append(f"| | {protocol}, {runs_text}, last evaluation (Table 1) | " + " | ".join(cells)
                         + " |")
    stamp = f"_success rate, mean ± s.e. [95 % bootstrap interval]; profile {offline['profile'].iloc[0]}, " \
            f"commit {offline['commit'].iloc[0]}, {offline['date'].iloc[0]}_"
    return "\n".join([README_START, "", *lines, "", stamp, README_END])


def update_readme(readme: str | Path, figures_dir: str | Path) -> bool:
    """Rewrite the headline block of ``readme`` from ``figures_dir``; True if it changed."""
    readme = Path(readme)
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} has no headline block (a line {README_START!r} ... {README_END!r})")
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    new = head + readme_headline(figures_dir) + tail
    readme.write_text(new)
    return new != text


if __name__ == "__main__":
    import sys

    from latco.paper.paths import FIGURES

    target = sys.argv[1] if len(sys.argv) > 1 else "README.md"
    print("updated" if update_readme(target, FIGURES) else "unchanged", target)
