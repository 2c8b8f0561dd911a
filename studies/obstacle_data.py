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
- ``corner+dash``: ``corner`` with a fifth of the 200K steps given to noisy dashes at the wall's end
  (``DataConfig.dash_episodes``: a dash of 1-5 steps toward (1, ±u), u in [0.2, 1], then a turn to
  the goal's height; 56 % of them end blocked): fast approaches to the corner, cleared or stopped,
  as a planner's open-loop plans make them. Oracle : random : greedy : dash = 2 : 1 : 1 : 1.

Everything lives under ``results/studies/obstacle_data`` and resumes like the workflow (records,
markers). Each run is one training seed of one candidate: ~18 min of training and ~10 min of
evaluation on one core (two runs side by side on 2 cores); ``report`` adds the corner probe.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

# isort: off
import latco  # noqa: F401  (sets the OMP/OpenBLAS thread defaults before numpy and torch load)
# isort: on
import pandas as pd
import torch

from latco.paper import diagnostics
from latco.paper.offline import train_and_evaluate
from latco.paper.profiles import Profile, get_profile
from latco.paper.recipe import corner_dashes, oracle_data
from latco.paper.results import MODEL_DONE
from latco.train import load_model

ROOT = Path("results/studies/obstacle_data")
CANDIDATES: dict[str, dict[str, object]] = {
    "base": {"task_data.obstacle.oracle_pass": None},
    "corner": {"task_data.obstacle.oracle_pass": (0.35, 0.75)},
    "corner+dash": {"task_data.obstacle.oracle_pass": (0.35, 0.75), "task_data.obstacle.episodes": 2667,
                    "task_data.obstacle.random_episodes": 1333, "task_data.obstacle.greedy_episodes": 1333,
                    "task_data.obstacle.dash_episodes": 1333},
    # not a data change: the base data, the decoder trained under bfloat16 autocast (0.86x the step)
    "base+bf16": {"task_data.obstacle.oracle_pass": None, "train.decoder_bf16": True},
}
DATA_OF = {"base+bf16": "base"}
"""Candidates that change only the training, not the data: they train on that candidate's data."""
SEEDS = (0, 1, 2)
PLANNERS = ("latco", "cem")


def candidate_profile(candidate: str) -> Profile:
    """The quick profile with the candidate's data change."""
    return get_profile("quick").with_overrides(CANDIDATES[candidate])


def data_folder(candidate: str) -> Path:
    """Where the candidate's offline data lives (its own folder, or the one ``DATA_OF`` names)."""
    return ROOT / DATA_OF.get(candidate, candidate) / "data"


def run(candidate: str, seed: int) -> None:
    """Data (shared by the candidate's seeds), the model of ``seed``, LatCo and CEM on Table 2's starts."""
    profile = candidate_profile(candidate)
    folder = ROOT / candidate
    data_dir = data_folder(candidate)
    if candidate != "base" and candidate not in DATA_OF:
        # random and greedy episodes do not depend on the oracle: the same as base's, copied if made
        for split in ("random", "greedy"):
            src = ROOT / "base" / "data" / split
            if not (data_dir / split).exists() and src.exists():
                shutil.copytree(src, data_dir / split)
    for planner, table in train_and_evaluate("obstacle", profile, data_dir, folder, PLANNERS, seed).items():
        print(f"{candidate} seed {seed} {planner}: success {table['success'].mean():.2f}")


def main() -> None:
    torch.set_num_threads(1)  # two runs share the two cores, as in the workflow
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run", help="data, model and evaluations of one candidate and seed")
    one.add_argument("--candidate", choices=sorted(CANDIDATES), required=True)
    one.add_argument("--seed", type=int, choices=SEEDS, required=True)
    sub.add_parser("report", help="print the study's table")
    args = parser.parse_args()
    if args.command == "run":
        run(args.candidate, args.seed)
    else:
        report()


def _probe_train(profile: Profile, data_dir: Path) -> list:
    """Every 20th training episode (333 of 6667, all kinds): the position probe's fit, as notebook 02."""
    return oracle_data("obstacle", profile, data_dir)["train"][::20]


def report() -> pd.DataFrame:
    """Per candidate and seed: the corner probe, then LatCo's and CEM's success and Table 3 gap
    (mean achieved − predicted reward of the executed plans), then the mean over seeds."""
    dashes = corner_dashes(ROOT, get_profile("quick").world_model.image_size)
    rows, blocked = [], float("nan")
    for candidate in CANDIDATES:
        folder = ROOT / candidate
        for seed in SEEDS:
            model_dir = folder / f"model_seed{seed}"
            if not (model_dir / MODEL_DONE).exists():
                continue
            model = load_model(model_dir)
            row: dict[str, object] = {"candidate": candidate, "seed": seed}
            train = _probe_train(candidate_profile(candidate), data_folder(candidate))
            probe = diagnostics.corner_probe(model, train, dashes)
            row.update({k: probe[k] for k in ("false_pass", "false_block", "corner_error_px")})
            blocked = probe["blocked"]  # the same dashes for every model
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
    print(f"Corner probe: {len(dashes)} dashes, {blocked:.0%} truly blocked. "
          " Success and gaps on Table 2's 100 starts (H = 30, executed open loop).\n")
    print(frame.to_markdown(index=False, floatfmt=".3f"))
    return frame


if __name__ == "__main__":
    main()
