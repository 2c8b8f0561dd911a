"""Does training the decoder under bfloat16 cost the Sawyer models anything planners need?

    python studies/decoder_bf16.py run --task reach      # model, probe, LatCo and CEM on Table 2's starts
    python studies/decoder_bf16.py report                # side by side with the float32 quick models

``TrainConfig.decoder_bf16`` makes a training step 0.86x as long (``benchmarks/train_step.py``). On
Obstacle, two bf16 models planned within the float32 models' seed spread
(``studies/obstacle_data.py``, candidate ``base+bf16``). Here the quick Reach or Push model is
trained once more, same data (``results/quick``'s, which ``make paper`` makes) and seed, with the
decoder under bf16, then scored as notebooks 02 and 03 score the quick model: the state probe
(gripper / puck R², filtered and imagined 10 and 30 steps) and LatCo's and CEM's success and
reward gap on Table 2's 20 starts. One training seed per task: differences within the
run-to-run spread of one model are not evidence either way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# isort: off
import latco  # noqa: F401  (sets the OMP/OpenBLAS thread defaults before numpy and torch load)
# isort: on
import pandas as pd
import torch

from latco.envs import task_spec
from latco.paper import diagnostics, paths
from latco.paper.offline import offline_evaluation, world_model_for_task
from latco.paper.profiles import get_profile
from latco.paper.recipe import oracle_data

ROOT = Path("results/studies/decoder_bf16")
QUICK = Path("results/quick")
PLANNERS = ("latco", "cem")
TASKS = ("reach", "push")


def run(task: str) -> None:
    """The bf16 model of ``task`` on the quick data, its state probe, LatCo and CEM on Table 2's starts."""
    profile = get_profile("quick").with_overrides({"train.decoder_bf16": True})
    data_dir = paths.data_dir(QUICK, task)
    if not data_dir.exists():
        raise FileNotFoundError(f"no quick data for {task} in {data_dir}: run `make paper` first")
    episodes = oracle_data(task, profile, data_dir)
    model = world_model_for_task(task, profile, episodes["train"], ROOT / task / "model", seed=0, data_seed=0)
    probe = pd.DataFrame([{"position": key, **diagnostics.state_probe(model, episodes["train"][:100],
                                                                        episodes["heldout"], key)}
                          for key in diagnostics.PROBED_POSITIONS[task_spec(task).name]])
    probe.to_csv(ROOT / task / "model" / "state_probe.csv", index=False)
    for planner in PLANNERS:
        table = offline_evaluation(task, planner, profile, model, ROOT / task / planner, model_seed=0,
                                   data_seed=0)
        print(f"{task} bf16 {planner}: success {table['success'].mean():.2f}")


def _row(kind: str, task: str, model_dir: Path, evaluations: dict[str, Path]) -> dict[str, object]:
    row: dict[str, object] = {"task": task, "decoder": kind}
    probe = model_dir / "state_probe.csv"
    if probe.exists():
        for _, p in pd.read_csv(probe).iterrows():
            row[f"{p['position']} R² (filtered / 10 / 30)"] = (
                f"{p['filtered']:.2f} / {p['imagined_10']:.2f} / {p['imagined_30']:.2f}")
    for planner, folder in evaluations.items():
        table_path = folder / "table.csv"
        if table_path.exists():
            table = pd.read_csv(table_path)
            row[f"{planner} success"] = table["success"].mean()
            row[f"{planner} gap"] = (table["achieved_reward"] - table["predicted_reward"]).mean()
    return row


def report() -> pd.DataFrame:
    """Per task: the float32 quick model (``results/quick``) and the bf16 one, side by side."""
    rows = []
    for task in TASKS:
        rows.append(_row("float32 (quick)", task, paths.model_dir(QUICK, task),
                         {p: paths.offline_dir(QUICK, task, p) for p in PLANNERS}))
        if (ROOT / task / "model").exists():
            rows.append(_row("bf16", task, ROOT / task / "model", {p: ROOT / task / p for p in PLANNERS}))
    frame = pd.DataFrame(rows)
    print(frame.to_markdown(index=False, floatfmt=".2f"))
    return frame


def main() -> None:
    torch.set_num_threads(1)  # two runs share the two cores, as in the workflow
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run", help="train, probe and evaluate the bf16 model of one task")
    one.add_argument("--task", choices=TASKS, required=True)
    sub.add_parser("report", help="print the table")
    args = parser.parse_args()
    if args.command == "run":
        run(args.task)
    else:
        report()


if __name__ == "__main__":
    main()
