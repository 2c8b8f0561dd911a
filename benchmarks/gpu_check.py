"""The paper profile's code paths on a GPU in one run of ≤ 10 minutes: timings, memory, a pipeline slice.

Usage: python benchmarks/gpu_check.py --out DIR [--budget-s 540] [--device cuda] [--tiny]

(a) seconds per 30-step plan on the paper-sized RSSM (random weights): LatCo at paper settings with
    ``n_plans`` 1 and 8 and for 8 starts at once (``plan_batch``, per start), CEM 100 × 10 000,
    GD 500 (slow rows timed over fewer iterations and scaled, ``latco.paper.benchmark.seconds_per_plan``);
(b) world-model training steps at 64 px, batch 50 × 50, and peak GPU memory; (c) a paper-profile
    slice end to end: collect Obstacle episodes, train the paper-sized model for the minutes left,
    evaluate LatCo, CEM and GD on a few starts. Each part writes ``DIR/<part>.csv`` and ``.md`` as
    soon as it is done; a part that raises is recorded in ``DIR/errors.txt`` and the script goes on,
    exiting 1 at the end. ``--tiny`` runs the same code on the CPU with tiny sizes in well under a
    minute (the test suite runs it). docs/gpu.md has the
    wheels and the one command for a lent accelerator.
"""

from __future__ import annotations

import argparse
import platform
import time
import traceback
from dataclasses import replace
from pathlib import Path

# isort: off
import latco  # noqa: F401  (sets the OMP/OpenBLAS thread defaults before numpy and torch load)
# isort: on
import numpy as np
import pandas as pd
import torch

from latco.model import WorldModelConfig, elbo_loss
from latco.paper.benchmark import random_model, seconds_per_plan
from latco.paper.profiles import DataConfig, get_profile, make_profile_planner, world_model_config
from latco.planners import make_planner
from latco.planners.latco import LatCoConfig

TINY_MODEL = WorldModelConfig(action_size=4, image_size=32, depth=4, stoch=4, deter=8, hidden=16,
                              reward_hidden=16)


def write(table: pd.DataFrame, out: Path, name: str) -> None:
    table.to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.md").write_text(table.to_markdown(index=False, floatfmt=".4g") + "\n")
    print(f"\n{name}\n{table.to_markdown(index=False, floatfmt='.4g')}", flush=True)


def planning(device: torch.device, tiny: bool, budget_s: float) -> pd.DataFrame:
    """(a) seconds per plan, each planner on the model on ``device``."""
    model = random_model(TINY_MODEL if tiny else WorldModelConfig(action_size=4)).to(device)
    specs = {
        "LatCo paper, n_plans=1": ("latco", {"iterations": 5} if tiny else {}),
        "LatCo paper, n_plans=8": ("latco", {"iterations": 5, "n_plans": 8} if tiny else {"n_plans": 8}),
        "CEM paper (100 x 10 000)": ("cem", {"iterations": 3, "samples": 64, "elites": 8} if tiny else {}),
        "GD paper (500)": ("gd", {"iterations": 5} if tiny else {}),
    }
    z0 = torch.randn(model.feature_size, generator=torch.Generator().manual_seed(1)).to(device)
    rows = []
    for label, spec in specs.items():
        seconds, extrapolated = seconds_per_plan(model, spec, z0, 30, budget_s=budget_s)
        rows.append({"planner": label, "s / 30-step plan": seconds, "extrapolated": extrapolated})
    # MPC over 8 vectorized environments: 8 starts in one batched LM (plan_batch), per start
    starts, few = 8, 2 if tiny else 20
    z0s = torch.randn(starts, model.feature_size, generator=torch.Generator().manual_seed(2)).to(device)
    planner = make_planner("latco", iterations=few)
    planner.plan_batch(model, z0s, 30)  # warm-up
    tick = time.perf_counter()
    planner.plan_batch(model, z0s, 30)
    full = LatCoConfig().iterations
    per_start = (time.perf_counter() - tick) * full / few / starts
    rows.append({"planner": f"LatCo paper, {starts} starts at once (plan_batch), per start",
                 "s / 30-step plan": per_start, "extrapolated": True})
    return pd.DataFrame(rows)


def training(device: torch.device, tiny: bool, steps: int) -> tuple[pd.DataFrame, float]:
    """(b) ms per world-model training step (forward, backward, Adam) on random data, peak memory."""
    cfg = TINY_MODEL if tiny else WorldModelConfig(action_size=4)
    batch, length = (2, 8) if tiny else (50, 50)
    model = random_model(cfg).to(device).train()
    model.requires_grad_(True)
    optimizer = torch.optim.Adam(model.parameters(), lr=6e-4, eps=1e-4)
    g = torch.Generator(device=device).manual_seed(0)
    S = cfg.image_size
    images = torch.randint(0, 256, (batch, length, S, S, 3), dtype=torch.uint8, device=device)
    actions = torch.rand(batch, length - 1, cfg.action_size, device=device) * 2 - 1
    rewards = torch.rand(batch, length - 1, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(steps + 2):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        tick = time.perf_counter()
        loss, _ = elbo_loss(model, images, actions, rewards, g)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - tick)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    step_s = float(np.median(times[2:]))
    table = pd.DataFrame([{"images": f"{S} px", "batch x length": f"{batch} x {length}",
                           "ms / step (median)": 1e3 * step_s, "steps timed": steps,
                           "peak GPU memory (GiB)": peak}])
    return table, step_s


def pipeline(device: torch.device, tiny: bool, out: Path, deadline: float, step_s: float) -> pd.DataFrame:
    """(c) collect Obstacle data, train the profile's model until the deadline, evaluate three planners."""
    from latco.agent import evaluate
    from latco.paper import offline, recipe

    profile = get_profile("smoke" if tiny else "paper")
    if not tiny:  # a few hundred episodes, the paper's mix
        profile = replace(profile, data=DataConfig(episodes=200, noise=0.3, heldout=5, random_episodes=50,
                                                   random_hold=5, greedy_episodes=50))
    task, tick = "obstacle", time.perf_counter()
    episodes = recipe.oracle_data(task, profile, out / "data" / task)
    collect_s = time.perf_counter() - tick
    eval_starts, planners = (1, ("latco", "cem", "gd")) if tiny else (3, ("latco", "cem", "gd"))
    reserve = 0 if tiny else 150  # seconds kept for the evaluations
    steps = 4 if tiny else max(20, int((deadline - time.perf_counter() - reserve) / max(step_s, 1e-3) * 0.8))
    tick = time.perf_counter()
    model = offline.world_model_for_task(task, profile, episodes["train"], out / "model" / task,
                                             steps=steps, device=str(device))
    train_s = time.perf_counter() - tick
    rows = [{"stage": "collect", "detail": f"{sum(len(v) for v in episodes.values())} episodes",
             "seconds": collect_s},
            {"stage": "train", "detail": f"{steps} steps, {world_model_config(profile, 2).image_size} px",
             "seconds": train_s}]
    for name in planners:
        tick = time.perf_counter()
        table = evaluate(model, make_profile_planner(profile, name), task, eval_starts,
                         seed=offline.OFFLINE_EVAL_SEED, progress=False)
        detail = (f"success {int(table['success'].sum())}/{len(table)}, "
                  f"{table['plan_seconds'].mean():.2f} s/plan")
        rows.append({"stage": f"evaluate {name}", "detail": detail, "seconds": time.perf_counter() - tick})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the tables")
    parser.add_argument("--budget-s", type=float, default=540.0, help="wall-clock budget of the whole run")
    parser.add_argument("--device", default=None, help="default: cuda (cpu with --tiny)")
    parser.add_argument("--tiny", action="store_true", help="CPU, tiny sizes: a smoke test of this script")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    deadline = start + args.budget_s
    device = torch.device(args.device or ("cpu" if args.tiny else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on a GPU machine, or pass --tiny (CPU, tiny sizes)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    (out / "device.txt").write_text(f"{name}\ntorch {torch.__version__}\n{time.strftime('%Y-%m-%d %H:%M')}\n")
    print(f"device: {name}, torch {torch.__version__}", flush=True)
    errors, step_s = [], 1.0
    parts = [
        ("planning", lambda: write(planning(device, args.tiny, 0.15 * args.budget_s / 4), out, "planning")),
        ("training", None),
        ("pipeline", lambda: write(pipeline(device, args.tiny, out, deadline, step_s), out, "pipeline")),
    ]
    for part, run in parts:
        try:
            if part == "training":
                table, step_s = training(device, args.tiny, 2 if args.tiny else 10)
                write(table, out, "training")
            else:
                run()
        except Exception:  # record and go on: one broken part must not hide the others
            errors.append(f"{part}:\n{traceback.format_exc()}")
            print(errors[-1], flush=True)
    if errors:
        (out / "errors.txt").write_text("\n".join(errors))
    print(f"\ndone in {time.perf_counter() - start:.0f} s; {len(errors)} part(s) failed", flush=True)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
