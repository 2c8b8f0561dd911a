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
import time
from pathlib import Path

# isort: off
import latco  # noqa: F401  (sets the OMP/OpenBLAS thread defaults before numpy and torch load)
# isort: on
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from latco.model import RSSM, WorldModelConfig  # noqa: E402
from latco.planners import make_planner  # noqa: E402
from latco.planners.latco import _Duals  # noqa: E402
from latco.solver import add_damping, block_cholesky, block_cholesky_solve  # noqa: E402


def paper_model(seed: int = 0) -> RSSM:
    torch.manual_seed(seed)
    model = RSSM(WorldModelConfig(action_size=4)).eval()
    model.requires_grad_(False)
    return model


def setup(model: RSSM, horizon: int):
    """A random plan of this horizon and a function that linearizes the LatCo problem there."""
    planner = make_planner("latco")
    A, Fz = model.action_size, model.feature_size
    g = torch.Generator().manual_seed(horizon)
    z0 = torch.randn(Fz, generator=g)
    x = torch.randn(1, horizon, A + Fz, generator=g)
    ones = torch.ones(1, horizon, dtype=torch.float64)
    duals = _Duals(ones, ones.clone(), True)
    return lambda: planner.linearize(model, z0, x, duals)


def block_step(lin) -> torch.Tensor:
    ne = lin.normal_equations()
    factor = block_cholesky(add_damping(ne.diag, 1e-3), ne.lower, gram=ne.gram, overwrite=True)
    return block_cholesky_solve(factor, ne.grad)


def dense_step(lin) -> torch.Tensor:
    ne = lin.normal_equations()
    add_damping(ne.diag, 1e-3)
    M = ne.dense()[0]  # (H·d, H·d) float64
    L, info = torch.linalg.cholesky_ex(M)
    if info != 0:
        raise np.linalg.LinAlgError("dense Cholesky failed")
    return torch.cholesky_solve(ne.grad.reshape(-1, 1), L)


def median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizons", type=int, nargs="+", default=[10, 30, 60, 120])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dense-budget", type=float, default=120.0,
                        help="run the dense solve only if its predicted time is below this (s)")
    parser.add_argument("--out", type=Path, default=Path("figures/solver_scaling.png"))
    args = parser.parse_args()
    model = paper_model()
    d = model.feature_size + model.action_size
    rows = []
    dense_fit = None  # seconds per (H·d)³ of the dense step, from the last dense run
    print(f"ms per LM iteration, d = {d} per step, torch threads = {torch.get_num_threads()} "
          f"(median of {args.repeats}; dense: 1 run)")
    print(f"  {'H':>4s} {'model+Jac':>10s} {'block LA':>9s} {'block it':>9s} {'dense LA':>10s} "
          f"{'dense it':>10s} {'dense/block':>11s}")
    for H in sorted(args.horizons):
        linearize = setup(model, H)
        with torch.no_grad():
            lin = linearize()
            block_step(lin)  # warm-up
            t_model = median_s(linearize, args.repeats)
            t_block = median_s(lambda lin=lin: block_step(lin), args.repeats)
            predicted = None if dense_fit is None else dense_fit * (H * d) ** 3
            t_dense, measured = None, False
            memory_gb = 2 * (H * d) ** 2 * 8 / 1e9
            if predicted is None or (predicted < args.dense_budget and memory_gb < 8):
                dx = dense_step(lin)
                bx = block_step(lin)
                rel = float((dx.reshape(bx.shape) - bx).norm() / bx.norm())
                assert rel < 1e-8, f"block and dense solutions differ: {rel:.2e}"
                t_dense, measured = median_s(lambda lin=lin: dense_step(lin), 1), True
                dense_fit = t_dense / (H * d) ** 3
            else:
                t_dense = predicted
        rows.append((H, t_model, t_block, t_dense, measured))
        dense_la = "—" if t_dense is None else f"{1e3 * t_dense:.0f}" + ("" if measured else " (est)")
        dense_it = "—" if t_dense is None else f"{1e3 * (t_model + t_dense):.0f}"
        ratio = "—" if t_dense is None else f"{t_dense / t_block:.0f}x"
        print(f"  {H:4d} {1e3 * t_model:10.1f} {1e3 * t_block:9.1f} {1e3 * (t_model + t_block):9.1f} "
              f"{dense_la:>10s} {dense_it:>10s} {ratio:>11s}")
    by_h = {H: t_m + t_b for H, t_m, t_b, _, _ in rows}
    if 30 in by_h and 120 in by_h:
        print(f"  block iteration t(120)/t(30) = {by_h[120] / by_h[30]:.2f} (linear: 4.0)")

    fig, ax = plt.subplots(figsize=(5.5, 4))
    hs = np.array([r[0] for r in rows])
    block_ms = np.array([1e3 * (r[1] + r[2]) for r in rows])
    ax.loglog(hs, block_ms, "o-", color="C0", label="block-tridiagonal Cholesky")
    meas = [(r[0], 1e3 * (r[1] + r[3])) for r in rows if r[3] is not None and r[4]]
    est = [(r[0], 1e3 * (r[1] + r[3])) for r in rows if r[3] is not None]
    if meas:
        ax.loglog(*zip(*meas, strict=True), "s-", color="C3", label="dense Cholesky (measured)")
    if len(est) > len(meas):
        ax.loglog(*zip(*est, strict=True), "s--", color="C3", mfc="none", label="dense (cubic extrapolation)")
    ref = block_ms[0] * hs / hs[0]
    ax.loglog(hs, ref, ":", color="gray", label="∝ H")
    ax.set_xlabel("planning horizon H")
    ax.set_ylabel("ms per LM iteration")
    ax.set_xticks(hs, [str(h) for h in hs])
    ax.set_title(f"LatCo LM iteration, paper-sized RSSM (d = {d})", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.text(0.01, 0.01, f"CPU, {torch.get_num_threads()} torch threads; model evaluation included",
             fontsize=7, color="gray")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=150)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
