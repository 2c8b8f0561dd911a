"""Push: does data in which a hand near the puck does not carry it stop the model imagining pushes?

    python studies/push_data.py run [--candidate decoy] [--seed 0]   # data, model, evaluations
    python studies/push_data.py report                               # the table

``studies/sawyer_exploit.py`` found the quick Push model imagining the puck moving 7-8 cm per plan
under every planner's actions while the real puck moved 1-1.5 cm: it predicts contact that does not
happen. In the quick data the puck moves only when Meta-World's expert has come down within 2 cm
of it, closed the gripper and carried it; a hand near the puck that leaves it is never shown.

- ``base``: the quick Push data and model as ``make paper`` made them (``results/quick``; nothing is
  retrained: the candidate below differs from it only in its data).
- ``decoy``: the same mix and size, but the 125 greedy episodes (hand straight to the goal) are
  replaced by 125 decoy episodes (``DataConfig.decoy_episodes``): the expert aims 5-10 cm beside
  the puck, comes down, closes the gripper on nothing and takes the hand to the goal; the puck
  stays unless the hand sweeps it on the way (``latco.envs.Oracle``'s ``aim_offset``).

Every candidate is trained like the quick Push model (8000 steps, seed 0) and LatCo, CEM and GD
run Table 2's 20 Push starts (H = 30, T_cache = 30). ``report`` gives each model's success, Table
3's gap and ``latco.paper.diagnostics.imagination_errors`` of the puck under each planner's
actions. Everything lives under ``results/studies/push_data`` and resumes like the workflow. A run:
~20 min of training and ~15 min of evaluation on one core.
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
from latco.paper import diagnostics, paths
from latco.paper.offline import train_and_evaluate
from latco.paper.profiles import Profile, get_profile
from latco.paper.results import MODEL_DONE
from latco.train import load_model

ROOT = Path("results/studies/push_data")
BASE_RESULTS = paths.results_dir("quick")
CANDIDATES: dict[str, dict[str, object]] = {
    "decoy": {"task_data.push.greedy_episodes": 0, "task_data.push.decoy_episodes": 125},
}
PLANNERS = ("latco", "cem", "gd")


def candidate_profile(candidate: str) -> Profile:
    """The quick profile with the candidate's data change."""
    return get_profile("quick").with_overrides(CANDIDATES.get(candidate, {}))


def run(candidate: str, seed: int) -> None:
    """Data, the model of ``seed``, and every planner on Table 2's Push starts."""
    profile = candidate_profile(candidate)
    folder = ROOT / candidate
    data_dir = folder / "data"
    for split in ("train", "random", "heldout"):  # the oracle's and random episodes: as the quick data's
        src = paths.data_dir(BASE_RESULTS, "push") / split
        if not (data_dir / split).exists() and src.exists():
            shutil.copytree(src, data_dir / split)
    for planner, table in train_and_evaluate("push", profile, data_dir, folder, PLANNERS, seed).items():
        print(f"{candidate} seed {seed} {planner}: success {table['success'].mean():.2f}")


def _sources(candidate: str, seed: int) -> tuple[Path, dict[str, Path]]:
    """The candidate's model folder and each planner's evaluation folder."""
    if candidate == "base":
        return (paths.model_dir(BASE_RESULTS, "push"),
                {p: paths.offline_dir(BASE_RESULTS, "push", p) for p in PLANNERS})
    folder = ROOT / candidate
    return folder / f"model_seed{seed}", {p: folder / f"seed{seed}" / p for p in PLANNERS}


def report(seed: int = 0) -> pd.DataFrame:
    """Per candidate and planner: success, Table 3's gap, and where the model puts the puck."""
    train = data.load_episodes(paths.data_dir(BASE_RESULTS, "push") / "train")[:100]
    rows = []
    for candidate in ("base", *CANDIDATES):
        model_dir, evaluations = _sources(candidate, seed)
        if not (model_dir / MODEL_DONE).exists():
            continue
        model = load_model(model_dir)
        predict = diagnostics.position_probe(model, train, "puck")
        for planner, folder in evaluations.items():
            if not (folder / "table.csv").exists():
                continue
            table = pd.read_csv(folder / "table.csv")
            errors = diagnostics.imagination_errors(model, data.load_episodes(folder / "episodes"), predict,
                                                    "puck", rewarded=True)
            rows.append({"candidate": candidate, "planner": planner, "success": table["success"].mean(),
                         "gap": (table["achieved_reward"] - table["predicted_reward"]).mean(),
                         **{k: errors[k] for k in ("moved", "imagined moved", "drift_30",
                                                   "to goal (true)", "to goal (imagined)")}})
            print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    print("Push, Table 2's 20 starts (H = 30, T_cache = 30); puck positions in m, per 30-step window\n")
    print(frame.to_markdown(index=False, floatfmt=".3f"))
    return frame


def main() -> None:
    torch.set_num_threads(1)  # two runs share the two cores, as in the workflow
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run", help="data, model and evaluations of one candidate and seed")
    one.add_argument("--candidate", choices=sorted(CANDIDATES), default="decoy")
    one.add_argument("--seed", type=int, default=0)
    sub.add_parser("report", help="print the study's table")
    args = parser.parse_args()
    if args.command == "run":
        run(args.candidate, args.seed)
    else:
        report()


if __name__ == "__main__":
    main()
