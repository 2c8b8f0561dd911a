"""Milliseconds per LM iteration against the planning horizon H: block-tridiagonal vs dense solve.

Usage: python benchmarks/solver_scaling.py [--horizons 10 30 60 120] [--repeats 5]
                                           [--dense-budget 120] [--out figures/solver_scaling.png]

One LatCo Levenberg–Marquardt iteration (paper Eq. 5) on the paper-sized RSSM (d = 234 variables
per step, random weights): model evaluation and Jacobians, assembly of JᵀJ + damping·I and Jᵀρ,
float64 factorization and solve. "block": ``latco.solver``'s block Cholesky, O(H·d³); "dense": the
same matrix formed densely, (H·d)², and factored by ``torch.linalg.cholesky``, O((H·d)³) — run only
where its predicted time (cubic extrapolation) fits ``--dense-budget`` seconds, else extrapolated
and drawn dashed. Medians over repeats; the CPU may be shared, so compare within one run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# isort: off
import latco  # noqa: F401  (sets the OMP/OpenBLAS thread defaults before numpy and torch load)
# isort: on
import torch

from latco.model import WorldModelConfig
from latco.paper import benchmark, plotting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizons", type=int, nargs="+", default=[10, 30, 60, 120])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dense-budget", type=float, default=120.0,
                        help="run the dense solve only if its predicted time is below this (s)")
    parser.add_argument("--out", type=Path, default=Path("figures/solver_scaling.png"))
    args = parser.parse_args()
    model = benchmark.random_model(WorldModelConfig(action_size=4))
    d = model.feature_size + model.action_size
    table = benchmark.solver_scaling(model, args.horizons, args.repeats, args.dense_budget)
    print(f"ms per LM iteration, d = {d} per step, torch threads = {torch.get_num_threads()} "
          f"(median of {args.repeats}; dense: 1 run; est = cubic extrapolation)")
    print(f"  {'H':>4s} {'model+Jac':>10s} {'block LA':>9s} {'block it':>9s} {'dense LA':>12s} "
          f"{'dense it':>10s} {'dense/block':>11s}")
    for r in table.itertuples():
        dense = f"{1e3 * r.dense_s:.0f}" + ("" if r.dense_measured else " (est)")
        block_it = 1e3 * (r.model_s + r.block_s)
        print(f"  {r.horizon:4d} {1e3 * r.model_s:10.1f} {1e3 * r.block_s:9.1f} {block_it:9.1f} {dense:>12s}"
              f"  {1e3 * (r.model_s + r.dense_s):10.0f} {r.dense_s / r.block_s:10.0f}x")
    by_h = dict(zip(table.horizon, table.model_s + table.block_s, strict=True))
    if 30 in by_h and 120 in by_h:
        print(f"  block iteration t(120)/t(30) = {by_h[120] / by_h[30]:.2f} (linear: 4.0)")
    fig = benchmark.plot_solver_scaling(table, d)
    plotting.save_figure(plotting.stamp(fig, "benchmark"), args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.png')} (+ .pdf)")


if __name__ == "__main__":
    main()
