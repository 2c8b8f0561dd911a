"""Can the gripper (Reach), the puck (Push) and the point mass (Obstacle) be read off the latents
the planners imagine?

    python studies/state_probe.py [--results results/quick] [--tasks reach push] [--horizons 10 30]

``latco.paper.diagnostics.state_probe`` per task and position (``diagnostics.PROBED_POSITIONS``): a linear
probe fitted from the filtered features of the first ``--train-episodes`` training episodes to the
true positions, scored by R² on the held-out episodes, on their filtered features and on features
imagined open loop under their own actions for each horizon. Notebook 02 shows the same table per
model. Needs a finished offline model and data of each task (``make paper`` or the Snakefile).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from latco import data
from latco.paper import diagnostics, paths, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=paths.results_dir("quick"))
    parser.add_argument("--tasks", nargs="+", default=["reach", "push"])
    parser.add_argument("--horizons", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--train-episodes", type=int, default=100, help="training episodes the probe sees")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for task in args.tasks:
        model = results.model(args.results, task)
        train = data.load_episodes(paths.data_dir(args.results, task) / "train")[: args.train_episodes]
        heldout = results.heldout_episodes(args.results, task)
        for key in diagnostics.PROBED_POSITIONS[task]:
            rows.append({"task": task, "position": key, "model steps": model.trained_steps,
                         **diagnostics.state_probe(model, train, heldout, key, tuple(args.horizons))})
    print(pd.DataFrame(rows).round(3).to_markdown(index=False))


if __name__ == "__main__":
    main()
