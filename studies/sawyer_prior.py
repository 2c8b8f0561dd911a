"""Reach and Push: does a prior trained toward the posterior (KL balancing) imagine the arm better?

    python studies/sawyer_prior.py run --task reach [--candidate kl0.8] [--seed 0]
    python studies/sawyer_prior.py report

``studies/sawyer_exploit.py`` found the quick Sawyer models wrong in their dynamics, not in their
reward heads: the imagined Reach gripper drifts about 5 cm in 30 steps (the success radius), and
the imagined Push puck moves 7-8 cm per plan where the real one moves 1-1.5 cm. Planners imagine
with the prior p(s_t | h_t), which the ELBO's KL(q || p) trains only as hard as it pulls the
posterior q toward it. KL balancing (``WorldModelConfig.kl_balance``, beyond the paper) keeps the
KL's value but sends the prior 80 % of its gradient and the posterior 20 % (DreamerV2's α = 0.8).

- ``base``: the quick Reach and Push models as ``make paper`` made them (``results/quick``).
- ``quick``: the quick model trained again here, for training seeds other than 0 (``base`` is seed 0).
- ``kl0.8``: the same data, training steps and seed, with ``kl_balance = 0.8``.
- ``kl0.8+decoy`` (Push only): ``kl_balance = 0.8`` on the decoy data of ``studies/push_data.py``
  (run that study's ``decoy`` candidate first), to see whether the two changes add up.

LatCo, CEM and GD then run Table 2's 20 starts (H = 30, T_cache = 30). ``report`` gives per model
and planner the success, Table 3's gap (achieved − predicted reward), and
``latco.paper.diagnostics.imagination_errors`` of the position that decides success (Reach: the
gripper; Push: the puck) under the planners' executed actions and under the held-out oracle
episodes' actions. Results live under ``results/studies/sawyer_prior`` and resume. A run on one
core: Reach ~30 min of training (12 000 steps), Push ~20 min (8000), ~15 min of planning each.
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

from latco import data
from latco.paper import diagnostics, paths, results
from latco.paper.offline import train_and_evaluate
from latco.paper.profiles import Profile, get_profile
from latco.paper.results import MODEL_DONE
from latco.train import load_model

ROOT = Path("results/studies/sawyer_prior")
BASE_RESULTS = paths.results_dir("quick")
CANDIDATES: dict[str, dict[str, object]] = {
    "quick": {},
    "kl0.8": {"world_model.kl_balance": 0.8},
    "kl0.8+decoy": {"world_model.kl_balance": 0.8, "task_data.push.greedy_episodes": 0,
                    "task_data.push.decoy_episodes": 125},
}
DATA = {"kl0.8+decoy": Path("results/studies/push_data/decoy/data")}
"""Where a candidate's data comes from when it is not the quick data of ``results/quick``."""
CANDIDATE_TASKS = {"kl0.8+decoy": ("push",)}
PLANNERS = ("latco", "cem", "gd")
TASKS = ("reach", "push")


def candidate_profile(candidate: str) -> Profile:
    """The quick profile with the candidate's world-model change."""
    return get_profile("quick").with_overrides(CANDIDATES.get(candidate, {}))


def run(task: str, candidate: str, seed: int) -> None:
    """The model of ``seed`` on the quick data of ``task``, and every planner on Table 2's starts."""
    if task not in CANDIDATE_TASKS.get(candidate, TASKS):
        raise ValueError(f"candidate {candidate} is made for {CANDIDATE_TASKS[candidate]}, not {task}")
    folder = ROOT / candidate / task
    data_dir = folder / "data"
    source = DATA.get(candidate, paths.data_dir(BASE_RESULTS, task))
    if not source.exists():
        raise FileNotFoundError(f"{source} is missing: run `make paper` (and for a decoy candidate "
                                "`python studies/push_data.py run`) first")
    data_dir.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():  # the data as is: only the model differs
        target = data_dir / item.name
        if not target.exists():
            shutil.copytree(item, target) if item.is_dir() else shutil.copy(item, target)
    tables = train_and_evaluate(task, candidate_profile(candidate), data_dir, folder, PLANNERS, seed)
    for planner, table in tables.items():
        print(f"{task} {candidate} seed {seed} {planner}: success {table['success'].mean():.2f}")


def _sources(task: str, candidate: str) -> list[tuple[int, Path, dict[str, Path]]]:
    """(training seed, model folder, each planner's evaluation folder) of the candidate's models."""
    if candidate == "base":
        return [(0, paths.model_dir(BASE_RESULTS, task),
                 {p: paths.offline_dir(BASE_RESULTS, task, p) for p in PLANNERS})]
    folder = ROOT / candidate / task
    seeds = sorted(int(d.name.removeprefix("model_seed")) for d in folder.glob("model_seed*"))
    return [(seed, folder / f"model_seed{seed}", {p: folder / f"seed{seed}" / p for p in PLANNERS})
            for seed in seeds]


def report() -> pd.DataFrame:
    """Per task, model and source of actions: success, Table 3's gap, where the model puts the
    position that decides success."""
    rows = []
    for task in TASKS:
        key = diagnostics.REWARDED_POSITION[task]
        train = data.load_episodes(paths.data_dir(BASE_RESULTS, task) / "train")[:100]
        heldout = results.heldout_episodes(BASE_RESULTS, task)
        models = [(c, *source) for c in ("base", *CANDIDATES) for source in _sources(task, c)]
        for candidate, seed, model_dir, evaluations in models:
            if not (model_dir / MODEL_DONE).exists():
                continue
            model = load_model(model_dir)
            predict = diagnostics.position_probe(model, train, key)
            sources = {"held-out data": (None, heldout)}
            for planner, folder in evaluations.items():
                if (folder / "table.csv").exists():
                    sources[planner] = (pd.read_csv(folder / "table.csv"),
                                        data.load_episodes(folder / "episodes"))
            for source, (table, episodes) in sources.items():
                errors = diagnostics.imagination_errors(model, episodes, predict, key, rewarded=True)
                row = {"task": task, "model": candidate, "seed": seed, "actions of": source,
                       "success": float("nan") if table is None else table["success"].mean(),
                       "Table 3 gap": float("nan") if table is None
                       else (table["achieved_reward"] - table["predicted_reward"]).mean()}
                row.update({k: errors[k] for k in ("moved", "imagined moved", "drift_10", "drift_30",
                                                   "to goal (true)", "to goal (imagined)")})
                rows.append(row)
                print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    print("Table 2's 20 starts (H = 30, T_cache = 30); positions (Reach: gripper, Push: puck) in m, "
          "per 30-step window\n")
    print(frame.to_markdown(index=False, floatfmt=".3f"))
    return frame


def main() -> None:
    torch.set_num_threads(1)  # two runs share the two cores, as in the workflow
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run", help="model and evaluations of one task, candidate and seed")
    one.add_argument("--task", choices=TASKS, required=True)
    one.add_argument("--candidate", choices=sorted(CANDIDATES), default="kl0.8")
    one.add_argument("--seed", type=int, default=0)
    sub.add_parser("report", help="print the study's table")
    args = parser.parse_args()
    if args.command == "run":
        run(args.task, args.candidate, args.seed)
    else:
        report()


if __name__ == "__main__":
    main()
