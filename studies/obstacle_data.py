"""Obstacle under the paper's open-loop protocol: which offline data makes a model LatCo can trust?

    python studies/obstacle_data.py run --candidate corner --seed 1   # data, model, evaluations
    python studies/obstacle_data.py report                            # the table (probe + success)

Each candidate is the ``quick`` profile with one change to the Obstacle data; everything else (the
model, its 6000 training steps, the planners, one plan of H = 30 executed blind, Table 2's 100
starts) stays as in Table 2. Each candidate is trained with 3 seeds, and LatCo and CEM are evaluated
on every model:

- ``base``: the quick data as it is: noisy oracle passing the wall at |y| = 0.75, random and greedy
  episodes, 200K env steps.
- ``corner``: the same mix and size, but each oracle episode passes at a height drawn from
  [0.35, 0.75] (``DataConfig.oracle_pass``), so about 40 % of them meet the wall near its end, where
  LatCo's and CEM's plans go (12 % of the base oracle's episodes do).

Everything lives under ``results/studies/obstacle_data`` and resumes like the workflow (records,
markers); ``base`` seed 0 is the workflow's quick Obstacle model and its evaluations, copied if present.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

# isort: off
import latco  # noqa: F401  (sets the OMP/OpenBLAS thread defaults before numpy and torch load)
# isort: on
import numpy as np
import pandas as pd
import torch

from latco import diagnostics, paths
from latco.config import Profile, get_profile
from latco.offline import offline_evaluation, world_model_for_task
from latco.recipe import corner_dashes, oracle_data
from latco.results import MODEL_DONE
from latco.train import load_model

ROOT = Path("results/studies/obstacle_data")
CANDIDATES: dict[str, dict[str, object]] = {
    "base": {},
    "corner": {"task_data.obstacle.oracle_pass": (0.35, 0.75)},
}
SEEDS = (0, 1, 2)
PLANNERS = ("latco", "cem")


def candidate_profile(candidate: str) -> Profile:
    """The quick profile with the candidate's data change."""
    return get_profile("quick").with_overrides(CANDIDATES[candidate] or None)


def _copy_workflow_base(results: Path) -> None:
    """Seed 0 of ``base`` is the workflow's quick model: copy it and its evaluations instead of
    training it again (same settings; the records say so and are checked on use)."""
    dest = ROOT / "base"
    if not (dest / "model_seed0").exists() and (paths.model_dir(results, "obstacle") / MODEL_DONE).exists():
        shutil.copytree(paths.model_dir(results, "obstacle"), dest / "model_seed0")
    for planner in PLANNERS:
        src = paths.offline_dir(results, "obstacle", planner)
        if not (dest / "seed0" / planner).exists() and (src / "table.csv").exists():
            shutil.copytree(src, dest / "seed0" / planner)


def run(candidate: str, seed: int, results: Path) -> None:
    """Data (shared by the candidate's seeds), the model of ``seed``, LatCo and CEM on Table 2's starts."""
    profile = candidate_profile(candidate)
    folder = ROOT / candidate
    if candidate == "base":
        _copy_workflow_base(results)
    data_dir = folder / "data"
    if candidate == "base":
        if not data_dir.exists():
            data_dir.parent.mkdir(parents=True, exist_ok=True)
            data_dir.symlink_to(paths.data_dir(results, "obstacle").resolve())
    else:
        # random and greedy episodes do not depend on the oracle: the same as base's, copied
        for split in ("random", "greedy"):
            src = paths.data_dir(results, "obstacle") / split
            if not (data_dir / split).exists() and src.exists():
                shutil.copytree(src, data_dir / split)
    episodes = oracle_data("obstacle", profile, data_dir, workers=1)
    model = world_model_for_task("obstacle", profile, episodes["train"], folder / f"model_seed{seed}",
                                 seed=seed, data_seed=0)
    for planner in PLANNERS:
        table = offline_evaluation("obstacle", planner, profile, model, folder / f"seed{seed}" / planner,
                                   model_seed=seed, data_seed=0)
        print(f"{candidate} seed {seed} {planner}: success {table['success'].mean():.2f}")


def main() -> None:
    torch.set_num_threads(1)  # two runs share the two cores, as in the workflow
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run", help="data, model and evaluations of one candidate and seed")
    one.add_argument("--candidate", choices=sorted(CANDIDATES), required=True)
    one.add_argument("--seed", type=int, choices=SEEDS, required=True)
    one.add_argument("--results", type=Path, default=Path("results/quick"),
                     help="the workflow's results (base seed 0 is copied from there)")
    sub.add_parser("report", help="print the study's table")
    args = parser.parse_args()
    if args.command == "run":
        run(args.candidate, args.seed, args.results)
    else:
        report()


def _probe_train(profile: Profile, data_dir: Path) -> list:
    """Every 20th training episode (333 of 6667, all kinds): the position probe's fit, as notebook 02."""
    return oracle_data("obstacle", profile, data_dir)["train"][::20]


def report() -> pd.DataFrame:
    """Per candidate and seed: the corner probe, then LatCo's and CEM's success and Table 3 gap
    (mean achieved − predicted reward of the executed plans), then the mean over seeds."""
    dashes = corner_dashes(ROOT, get_profile("quick").world_model.image_size)
    rows = []
    for candidate in CANDIDATES:
        folder = ROOT / candidate
        for seed in SEEDS:
            model_dir = folder / f"model_seed{seed}"
            if not (model_dir / MODEL_DONE).exists():
                continue
            model = load_model(model_dir)
            row: dict[str, object] = {"candidate": candidate, "seed": seed}
            train = _probe_train(candidate_profile(candidate), folder / "data")
            probe = diagnostics.corner_probe(model, train, dashes)
            row.update({k: probe[k] for k in ("false_pass", "false_block", "corner_error_px")})
            for planner in PLANNERS:
                table_path = folder / f"seed{seed}" / planner / "table.csv"
                if table_path.exists():
                    table = pd.read_csv(table_path)
                    row[f"{planner} success"] = table["success"].mean()
                    row[f"{planner} gap"] = (table["achieved_reward"] - table["predicted_reward"]).mean()
            rows.append(row)
    frame = pd.DataFrame(rows)
    means = frame.drop(columns="seed").groupby("candidate", sort=False).mean(numeric_only=True)
    means.insert(0, "seed", "mean")
    frame = pd.concat([frame, means.reset_index()], ignore_index=True)
    blocked = np.mean([e.state["agent"][-1, 0] < 0.2 for e in dashes])
    print(f"Corner probe: {len(dashes)} dashes, {blocked:.0%} truly blocked. "
          " Success and gaps on Table 2's 100 starts (H = 30, executed open loop).\n")
    print(frame.to_markdown(index=False, floatfmt=".3f"))
    return frame


if __name__ == "__main__":
    main()
