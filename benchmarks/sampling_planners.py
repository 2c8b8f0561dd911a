"""Sampling planners at the rollout floor: CEM, MPPI and iCEM before vs after streaming the returns.

Usage: python benchmarks/sampling_planners.py [--samples 1000 10000] [--rounds 3] [--horizon 30]

The shooting planners score every sampled action sequence by ``rollout_return``. Before, it called
``rollout``, which stacks every feature (N, H+1, F) and runs the reward head once on the stack; after,
it sums r(z_{t+1}) step by step and keeps no feature, and ``RSSM.predict_mean`` computes only the
mean rows of the prior head (no std, no softplus). "Before" is the old code, kept here
(``rollout_return_stacked``, ``predict_mean_full_prior``) and injected into the planner modules.

Model: the paper-sized RSSM (stoch 30, deter 200, hidden 200, reward MLP 2×400) with random weights,
1 torch thread. Part 1 times the rollout alone: old code, streaming returns with the old μ, and
the new code. Part 2 times whole plans over a few iterations (2 at 1000 samples, 1 at 10 000, so the
script ends in about 3-4 minutes on 2 shared cores), in interleaved before/after rounds, medians;
per paper-length plan = per iteration × the paper's count (CEM, MPPI: 100 iterations; iCEM: its
default 10 iterations of shrinking populations, scaled by their total size). iCEM is timed with
``population_decay=1`` so that every timed iteration scores the same number of sequences.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import types
from collections.abc import Callable, Iterator

# isort: off
import latco  # noqa: F401  (sets the OMP/OpenBLAS thread defaults before numpy and torch load)
# isort: on
import numpy as np
import torch
from torch import Tensor

import latco.planners.cem as cem_module
import latco.planners.icem as icem_module
from latco.model import RSSM, WorldModelConfig
from latco.paper.benchmark import random_model
from latco.planners import make_planner
from latco.planners.base import LatentModel
from latco.planners.evaluate import rollout, rollout_return

PAPER_ITERATIONS = {"cem": 100, "mppi": 100}  # App. B; iCEM: its config default (see paper_scale)


def rollout_return_stacked(model: LatentModel, z0: Tensor, actions: Tensor,
                           action_max: float | None = None) -> Tensor:
    """The old ``rollout_return``: stack all features (..., H+1, F), one reward call, sum."""
    if action_max is not None:
        actions = actions.clamp(-action_max, action_max)
    return rollout(model, z0, actions)[1].sum(-1)


def predict_mean_full_prior(model: RSSM, z: Tensor, a: Tensor) -> Tensor:
    """The old ``RSSM.predict_mean``: the whole prior head (mean and std), then its mean half."""
    s, h = model.split(z)
    h_next = model._transition(s, h, a)
    return torch.cat([model.prior(h_next)[0], h_next], -1)


@contextlib.contextmanager
def implementation(model: RSSM, which: str) -> Iterator[None]:
    """Run the planners with the "before" code (old rollout_return and μ) or the current ("after")."""
    if which == "after":
        yield
        return
    saved = cem_module.rollout_return, icem_module.rollout_return
    cem_module.rollout_return = icem_module.rollout_return = rollout_return_stacked  # MPPI uses CEM's loop
    model.predict_mean = types.MethodType(predict_mean_full_prior, model)
    try:
        yield
    finally:
        cem_module.rollout_return, icem_module.rollout_return = saved
        del model.predict_mean


def medians(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median wall seconds of each function over interleaved rounds (the CPU is shared)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            start = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - start)
    return {k: float(np.median(v)) for k, v in times.items()}


def extra_rounds(rounds: int, samples: int) -> int:
    """Twice the rollout rounds at <= 1000 samples: cheap there, and the shared CPU makes them noisier."""
    return rounds * (2 if samples <= 1000 else 1)


def planner_overrides(name: str, samples: int, iterations: int) -> dict:
    """Timed settings: ``samples`` per iteration, ``iterations`` iterations (iCEM without decay)."""
    overrides = dict(samples=samples, iterations=iterations)
    if name in ("cem", "icem"):
        overrides["elites"] = min(100, samples)  # their default, valid for small test sizes too
    if name == "icem":
        overrides["population_decay"] = 1.0
    return overrides


def paper_scale(name: str, samples: int) -> float:
    """Iterations of N samples a paper-length plan costs: 100 for CEM/MPPI; iCEM: Σ_i N_i / N."""
    if name in PAPER_ITERATIONS:
        return float(PAPER_ITERATIONS[name])
    planner = make_planner("icem", samples=samples)
    return sum(planner.population(i) for i in range(planner.config.iterations)) / samples


ROLLOUTS = ("before", "streaming, old μ", "after")


def rollout_fn(model: RSSM, which: str, z0: Tensor, actions: Tensor) -> Callable[[], Tensor]:
    """One scoring of ``actions`` by the code ``which`` (one of ``ROLLOUTS``), as a thunk to time."""
    def run() -> Tensor:
        with implementation(model, "after" if which == "after" else "before"):
            score = rollout_return_stacked if which == "before" else rollout_return
            return score(model, z0, actions, 1.0)
    return run


def plan_fn(model: RSSM, which: str, name: str, overrides: dict, z0: Tensor,
            horizon: int) -> Callable[[], object]:
    """One plan of planner ``name`` with the "before" or "after" code, as a thunk to time."""
    def run() -> object:
        with implementation(model, which):
            return make_planner(name, **overrides).plan(model, z0, horizon)
    return run


def part_rollout(model: RSSM, samples: list[int], horizon: int, rounds: int) -> None:
    print(f"Part 1: one rollout of N sequences, H = {horizon} (s, median of {rounds} rounds, "
          f"{extra_rounds(rounds, 1000)} at N <= 1000; Δ = max |return diff| on 200 sequences)")
    print(f"  {'N':>6s} {'stacked (before)':>17s} {'streaming, old μ':>17s} {'streaming (after)':>18s} "
          f"{'speed-up':>9s} {'Δ':>9s}")
    z0 = torch.randn(model.feature_size, generator=torch.Generator().manual_seed(1))
    for n in samples:
        actions = torch.randn(n, horizon, model.action_size, generator=torch.Generator().manual_seed(2))

        fns = {which: rollout_fn(model, which, z0, actions) for which in ROLLOUTS}

        with torch.no_grad():
            few = {which: rollout_fn(model, which, z0, actions[:200]) for which in ROLLOUTS}
            diff = float((few["before"]() - few["after"]()).abs().max())  # also the warm-up
            t = medians(fns, extra_rounds(rounds, n))
        print(f"  {n:6d} {t['before']:17.3f} {t['streaming, old μ']:17.3f} {t['after']:18.3f} "
              f"{t['before'] / t['after']:8.2f}× {diff:9.1e}", flush=True)


def part_plans(model: RSSM, samples: list[int], horizon: int, rounds: int) -> None:
    print(f"\nPart 2: seconds per plan iteration and per paper-length plan, H = {horizon} "
          f"(median of {rounds} interleaved rounds)")
    print(f"  {'planner':8s} {'N':>6s} {'iters':>5s} {'s/iter before':>14s} {'after':>8s} "
          f"{'s/plan before':>14s} {'after':>8s} {'speed-up':>9s}")
    z0 = torch.randn(model.feature_size, generator=torch.Generator().manual_seed(1))
    names = ["cem", "mppi", "icem"]
    for name in names:  # warm-up of every code path at a small size
        for which in ("before", "after"):
            plan_fn(model, which, name, planner_overrides(name, 200, 1), z0, horizon)()
    for n in samples:
        iterations = max(1, 2000 // n)
        fns = {(name, which): plan_fn(model, which, name, planner_overrides(name, n, iterations), z0, horizon)
               for name in names for which in ("before", "after")}
        t = medians(fns, rounds)
        for name in names:
            before, after = t[name, "before"] / iterations, t[name, "after"] / iterations
            scale = paper_scale(name, n)
            print(f"  {name:8s} {n:6d} {iterations:5d} {before:14.3f} {after:8.3f} "
                  f"{before * scale:14.1f} {after * scale:8.1f} {before / after:8.2f}×", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--horizon", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = random_model(WorldModelConfig(action_size=4))
    start = time.perf_counter()
    part_rollout(model, args.samples, args.horizon, args.rounds)
    part_plans(model, args.samples, args.horizon, args.rounds)
    print(f"\n(total {time.perf_counter() - start:.0f} s, {torch.get_num_threads()} torch thread)")


if __name__ == "__main__":
    main()
