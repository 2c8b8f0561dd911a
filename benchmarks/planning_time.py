"""Seconds per 30-step LatCo plan at paper settings, and where each LM iteration spends its time.

Usage: python benchmarks/planning_time.py [--horizon 30] [--iterations 200] [--repeats 3]
                                          [--threads 1 2] [--rounds 7]

Model: a paper-sized RSSM (stoch 30, deter 200, hidden 200, reward MLP 2×400) with random weights,
so d = A + F = 234 variables per time step. The paper reports 14 s per 30-step LatCo plan on an
RTX 2080 Ti (App. B). Part 1 times each piece of one LM iteration, alternatives side by side, in
interleaved rounds (medians: the CPU may be shared). Part 2 times whole plans; the slow
configurations (torch.func Jacobian, torch.linalg factorization) are timed over a few iterations
and scaled to the full plan. ``--threads`` are torch intra-op thread counts to compare.

Part 2b: what a float32 factorization could save (mixed precision with iterative refinement): the
three LAPACK calls of one block step (potrf, trsm, syrk on a d × d block) in float64 and float32,
interleaved, through scipy on one thread.

Part 4: ``--batch-starts`` start features planned one after another against one
``LatCoPlanner.plan_batch`` call (MPC over vectorized environments), ``--few`` iterations each.

Part 3 (with ``--results``, e.g. ``results/quick`` after ``make paper``; ``--only-part3`` skips the
others, ``--only`` keeps the settings whose label contains a given string): cheaper LatCo settings
against the paper's (1 plan, 200 iterations, float64) on a *trained* model (how many iterations the
early stop takes depends on the model, so they are counted there): the early stop
(``LatCoConfig.stop_tol``) in float64 and mixed precision, and two plans of 24 iterations. Per
setting: the iterations used, the model return of the executed (clipped) actions from ``--starts``
held-out first frames, and the seconds per plan of that many iterations timed on the paper-sized
RSSM.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

# isort: off
import latco  # noqa: F401  (sets the OMP/OpenBLAS thread defaults before numpy and torch load)
# isort: on
import numpy as np
import torch

from latco.model import RSSM, WorldModelConfig
from latco.planners import make_planner, planner_config
from latco.planners.evaluate import rollout_return
from latco.planners.latco import (
    CollocationLinearization,
    Multipliers,
    dynamics_jacobian,
    reward_and_grad,
)
from latco.solver import (
    add_damping,
    add_gram,
    block_cholesky,
    block_cholesky_solve,
    chain_normal_equations,
)


def paper_model(action_size: int = 4, seed: int = 0) -> RSSM:
    """The paper-sized RSSM with random weights, frozen."""
    torch.manual_seed(seed)
    model = RSSM(WorldModelConfig(action_size=action_size)).eval()
    model.requires_grad_(False)
    return model


def median_ms(fns: dict[str, Callable[[], object]], rounds: int, inner: int = 3) -> dict[str, float]:
    """Median wall time (ms) of each function, measured in interleaved rounds after a warm-up."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for f in fns.values():
        f()
    for _ in range(rounds):
        for k, f in fns.items():
            for _ in range(inner):
                t = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t)
    return {k: 1e3 * float(np.median(v)) for k, v in times.items()}


def dense_jacobian_blocks(lin: CollocationLinearization):
    """The per-step residual Jacobian blocks (m = F + A + 1 rows × d) a generic chain solver needs:
    the 'before' of the structured assembly."""
    wd, wa, wr = lin.multipliers.weights()
    B, H, Fz = lin.dyn.shape
    A = lin.res.act.shape[-1]
    dt = lin.jz.dtype
    jc = torch.zeros(B, H, Fz + A + 1, Fz + A, dtype=dt)
    jp = torch.zeros_like(jc)
    jc[..., :Fz, :A] = -wd[..., None, None].to(dt) * lin.ja
    jc[..., :Fz, A:] = wd[..., None, None].to(dt) * torch.eye(Fz, dtype=dt)
    jc[..., Fz:Fz + A, :A] = torch.diag_embed(wa[..., None].to(dt) * lin.act_grad)
    jc[..., -1, A:] = wr[:, None, None].to(dt) * lin.rew_grad
    jp[:, 1:, :Fz, A:] = -wd[:, 1:, None, None].to(dt) * lin.jz[:, 1:]
    return lin.residuals().to(dt), jc, jp


def gram_formed_in_float32(lin: CollocationLinearization):
    """The structured assembly with the Gram term G_tᵀG_t formed by a batched float32 product
    and copied into the float64 blocks (an intermediate version, kept for comparison)."""
    ne = lin.normal_equations()
    g = ne.gram.shape[-1]
    G = ne.gram.float()
    ne.diag[..., -g:, -g:] += G.mT @ G
    return ne


def iteration_breakdown(model: RSSM, horizon: int, rounds: int) -> dict[str, float]:
    planner = make_planner("latco")
    A, Fz = model.action_size, model.feature_size
    g = torch.Generator().manual_seed(0)
    z0 = torch.randn(Fz, generator=g)
    x = torch.randn(1, horizon, A + Fz, generator=g)
    duals = Multipliers(1, horizon, 1.0, 1.0)
    a, z_next = x[..., :A], x[..., A:]
    z_prev = torch.cat([z0.expand(1, 1, -1), z_next[:, :-1]], 1)
    with torch.no_grad():
        lin = planner.linearize(model, z0, x, duals)
        ne = lin.normal_equations()
        D, L, G = add_damping(ne.diag, 1e-3), ne.lower, ne.gram
        residual, jc, jp = dense_jacobian_blocks(lin)
        factor = block_cholesky(D, L, "scipy", gram=G)
        factor_torch = block_cholesky(add_gram(D, G), L, "torch")
        jac = median_ms({
            "analytic (model.predict_mean_jacobian)": lambda: dynamics_jacobian(model, z_prev, a, "analytic"),
            "torch.func vmap(jacrev)": lambda: dynamics_jacobian(model, z_prev, a, "autograd"),
        }, rounds)
        rest = median_ms({
            "predict_mean, reward, ∂r/∂z (one backward)": lambda: (model.predict_mean(z_prev, a),
                                                                  reward_and_grad(model, z_next)),
        }, rounds)
        assembly = median_ms({
            "structured, Gram term left to the factorization": lin.normal_equations,
            "structured, Gram term by float32 bmm + copy": lambda: gram_formed_in_float32(lin),
            "generic: products of dense m×d Jacobian blocks": lambda: chain_normal_equations(residual, jc,
                                                                                              jp),
        }, rounds)
        factorization = median_ms({
            "LAPACK, twisted, 2 threads": lambda: block_cholesky(D, L, "scipy", threads=2, gram=G),
            "LAPACK, twisted, 1 thread": lambda: block_cholesky(D, L, "scipy", threads=1, gram=G),
            "torch.linalg, forward recursion": lambda: block_cholesky(add_gram(D, G), L, "torch"),
        }, rounds)
        solve = median_ms({
            "LAPACK, 2 threads": lambda: block_cholesky_solve(factor, ne.grad, threads=2),
            "LAPACK, 1 thread": lambda: block_cholesky_solve(factor, ne.grad, threads=1),
            "torch.linalg": lambda: block_cholesky_solve(factor_torch, ne.grad),
        }, rounds)
    print(f"\nOne LM iteration, H = {horizon}, d = {A + Fz}, torch threads = {torch.get_num_threads()} "
          f"(median ms, {rounds} interleaved rounds)")
    tables = {"dynamics Jacobian": jac, "rest of the model evaluation": rest,
              "assembly of the JᵀJ blocks and Jᵀρ": assembly,
              "float64 block Cholesky (incl. the Gram term)": factorization,
              "substitution (forward + backward)": solve}
    for title, table in tables.items():
        print(f"  {title}")
        for name, ms in table.items():
            print(f"    {name:<52s} {ms:8.1f} ms")
    names = ("Jacobian", "model rest", "assembly", "factorization", "solve")
    parts = {name: next(iter(table.values())) for name, table in zip(names, tables.values(), strict=True)}
    print("  default pieces (first rows): " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items())
          + f" -> {sum(parts.values()):.1f} ms")
    return parts


def time_plans(model: RSSM, horizon: int, iterations: int | None = None, repeats: int = 3,
               **overrides) -> tuple[float, float]:
    """Median (wall, process CPU) seconds per plan, each plan a fresh initialization."""
    if iterations is not None:
        overrides["iterations"] = iterations
    planner = make_planner("latco", **overrides)
    z0 = torch.randn(model.feature_size, generator=torch.Generator().manual_seed(1))
    walls, cpus = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        planner.plan(model, z0, horizon)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return float(np.median(walls)), float(np.median(cpus))


def block_precision(d: int, rounds: int) -> None:
    """Part 2b: ms of potrf, trsm and syrk on one d × d block, float64 against float32, interleaved."""
    from scipy.linalg import blas, lapack

    rng = np.random.default_rng(0)
    m = rng.standard_normal((d, d))
    spd, rhs = m @ m.T + d * np.eye(d), rng.standard_normal((d, d))
    calls = {}
    routines = {"float64": (np.float64, lapack.dpotrf, blas.dtrsm, blas.dsyrk),
                "float32": (np.float32, lapack.spotrf, blas.strsm, blas.ssyrk)}
    for name, (dtype, potrf, trsm, syrk) in routines.items():
        a, b = np.asfortranarray(spd.astype(dtype)), np.asfortranarray(rhs.astype(dtype))
        factor = potrf(a, lower=1)[0]
        calls[name] = {"potrf": lambda a=a, f=potrf: f(a, lower=1),
                       "trsm": lambda f=trsm, factor=factor, b=b: f(1.0, factor, b, lower=1),
                       "syrk": lambda f=syrk, b=b: f(1.0, b)}
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for name, ops in calls.items():
            for op, fn in ops.items():
                tick = time.perf_counter()
                for _ in range(20):
                    fn()
                times.setdefault((name, op), []).append((time.perf_counter() - tick) / 20)
    print(f"\nOne block step at d = {d} (scipy LAPACK, 1 thread, median of {rounds} interleaved rounds):")
    for op in ("potrf", "trsm", "syrk"):
        f64, f32 = (1e3 * float(np.median(times[(n, op)])) for n in ("float64", "float32"))
        print(f"  {op:<6s} float64 {f64:6.3f} ms   float32 {f32:6.3f} ms   ratio {f32 / f64:.2f}")


def batched_starts(model: RSSM, horizon: int, starts: int, iterations: int) -> None:
    """Part 4: ``starts`` plans one after another against one ``plan_batch`` call (per start)."""
    g = torch.Generator().manual_seed(3)
    z0s = torch.randn(starts, model.feature_size, generator=g)
    planner = make_planner("latco", iterations=iterations)
    planner.plan_batch(model, z0s[:1], horizon)  # warm-up
    tick = time.perf_counter()
    for z0 in z0s:
        planner.plan(model, z0, horizon)
    one_by_one = (time.perf_counter() - tick) / starts
    tick = time.perf_counter()
    planner.plan_batch(model, z0s, horizon)
    batched = (time.perf_counter() - tick) / starts
    print(f"\n{starts} starts, {iterations} LM iterations each, paper-sized RSSM: one after another "
          f"{one_by_one:.2f} s per start, in one plan_batch {batched:.2f} s per start "
          f"({batched / one_by_one:.2f}x)")


def cheaper_settings(tolerances: list[float], iterations: int) -> dict[str, dict]:
    """Part 3's LatCo settings: the paper's, the early stop (float64 and mixed), two short plans."""
    out = {"paper: 1 plan x 200, float64": {"iterations": iterations}}
    for precision in ("float64", "mixed"):
        out |= {f"stop_tol {tol:g}, {precision}": {"iterations": iterations, "stop_tol": tol,
                                                   "precision": precision} for tol in tolerances}
    out["2 plans x 24 iterations"] = {"n_plans": 2, "iterations": 24}
    out["stop_tol 0.05 + L-BFGS-B polish 30"] = {"iterations": iterations, "stop_tol": 0.05,
                                                 "polish_iterations": 30}
    fast = planner_config("latco-fast")  # its own options, so the row follows the preset
    out[f"latco-fast: {fast.n_plans} x {fast.iterations} + L-BFGS-B {fast.polish_iterations} "
        f"({fast.polish_objective})"] = {
        "n_plans": fast.n_plans, "iterations": fast.iterations, "polish_iterations": fast.polish_iterations,
        "polish_objective": fast.polish_objective}
    out["stop_tol 0.05, mixed + polish 30"] = {"iterations": iterations, "stop_tol": 0.05,
                                               "precision": "mixed", "polish_iterations": 30}
    out["2 plans x 24, mixed + polish 30"] = {"n_plans": 2, "iterations": 24, "precision": "mixed",
                                              "polish_iterations": 30}
    out["2 plans x 24 + polish 30 (latco objective)"] = {
        "n_plans": 2, "iterations": 24, "polish_iterations": 30, "polish_objective": "latco"}
    return out


def cheaper_plans_table(results: str, task: str, starts: int, settings: dict[str, dict], horizon: int,
                        paper_sized: RSSM, repeats: int) -> None:
    """Part 3: each setting's iterations and model return on the trained model of ``task``, and the
    seconds per plan of that many iterations on the paper-sized RSSM (timed, not extrapolated)."""
    from latco.paper import paths
    from latco.paper.results import heldout_starts
    from latco.train import load_model

    model = load_model(paths.model_dir(results, task))
    model.requires_grad_(False)
    z0s = heldout_starts(model, results, task, starts)
    print(f"\nCheaper LatCo plans on the trained {task} model in {results} ({len(z0s)} held-out starts, "
          f"H = {horizon}; start s uses planner seed s); the last column times the mean iterations used "
          "on the paper-sized RSSM")
    print(f"  {'setting':<34s} {'iterations':>10s} {'range':>9s} {'return':>8s} {'s/plan here':>11s} "
          f"{'s/plan paper-sized':>18s}")
    for label, options in settings.items():
        used, returns, seconds = [], [], []
        for s, z0 in enumerate(z0s):
            tick = time.perf_counter()
            plan = make_planner("latco", seed=s, **options).plan(model, z0, horizon)
            seconds.append(time.perf_counter() - tick)
            used.append(int(plan.trace["stopped_at"]))
            returns.append(float(rollout_return(model, z0, plan.actions, action_max=1.0)))
        fixed = {k: v for k, v in options.items() if k != "stop_tol"} | {"iterations": round(np.mean(used))}
        paper_s, _ = time_plans(paper_sized, horizon, repeats=repeats, **fixed)
        spread = f"{min(used)}-{max(used)}"
        print(f"  {label:<34s} {np.mean(used):10.1f} {spread:>9s} {np.mean(returns):8.2f} "
              f"{np.mean(seconds):11.2f} {paper_s:18.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="plans per configuration (median)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds for the breakdown")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch intra-op threads")
    parser.add_argument("--few", type=int, default=10, help="iterations timed for the slow configurations")
    parser.add_argument("--batch-starts", type=int, default=4, help="part 4: starts planned at once")
    parser.add_argument("--results", default=None, help="part 3: a results folder with trained models")
    parser.add_argument("--task", default="obstacle", help="part 3: whose trained model")
    parser.add_argument("--starts", type=int, default=10, help="part 3: held-out start frames")
    parser.add_argument("--stop-tols", type=float, nargs="+", default=[0.03, 0.05, 0.1],
                        help="part 3: the stop_tol values compared with the fixed iterations")
    parser.add_argument("--only-part3", action="store_true",
                        help="with --results: only part 3 (the trained model's settings table)")
    parser.add_argument("--only", nargs="+", default=None,
                        help="part 3: only the settings whose label contains one of these (and the paper's)")
    args = parser.parse_args()
    model = paper_model()
    if args.only_part3:
        if not args.results:
            parser.error("--only-part3 needs --results (a folder with trained models)")
        torch.set_num_threads(args.threads[0])
        settings = cheaper_settings(args.stop_tols, args.iterations)
        if args.only:
            settings = {k: v for k, v in settings.items()
                        if k.startswith("paper") or any(o in k for o in args.only)}
        cheaper_plans_table(args.results, args.task, args.starts, settings, args.horizon, model, args.repeats)
        return
    default_threads = torch.get_num_threads()
    for n in args.threads:
        torch.set_num_threads(n)
        iteration_breakdown(model, args.horizon, args.rounds)

    H, K = args.horizon, args.iterations
    print(f"\nSeconds per {H}-step plan, {K} LM iterations "
          f"(median of {args.repeats} plans; CPU = process time)")
    print(f"  {'configuration':<62s} {'torch thr':>9s} {'s/plan':>7s} {'CPU s':>6s} {'ms/it':>6s}")

    def row(label: str, threads: int, iterations: int, **kw) -> float:
        torch.set_num_threads(threads)
        wall, cpu = time_plans(model, H, iterations, args.repeats, **kw)
        scale = K / iterations
        ms_per_it = 1e3 * wall / iterations
        print(f"  {label:<62s} {threads:9d} {wall * scale:7.2f} {cpu * scale:6.2f} {ms_per_it:6.1f}")
        return ms_per_it

    default = "default: analytic Jacobian, LAPACK twisted on 2 threads"
    for n in args.threads:
        row(default, n, K)
    row("  the same, mixed precision (float32 factor + refinement)", args.threads[0], K,
                   precision="mixed")
    row("  the same, LAPACK on 1 thread", args.threads[0], K, solver_threads=1)
    few = f" (x{K // args.few} from {args.few} its)"
    row("analytic Jacobian, torch.linalg block Cholesky" + few, args.threads[0], args.few, backend="torch")
    row("torch.func Jacobian, LAPACK 2 threads" + few, args.threads[0], args.few, jacobian="autograd")
    row("torch.func Jacobian, torch.linalg (prototype-like)" + few, args.threads[0], args.few,
        jacobian="autograd", backend="torch")
    torch.set_num_threads(default_threads)
    print("\nPaper (App. B): 14 s per 30-step LatCo plan on one RTX 2080 Ti.")
    block_precision(model.feature_size + model.action_size, args.rounds)
    torch.set_num_threads(args.threads[0])
    batched_starts(model, H, args.batch_starts, args.few)
    torch.set_num_threads(default_threads)
    if args.results:
        torch.set_num_threads(args.threads[0])
        cheaper_plans_table(args.results, args.task, args.starts, cheaper_settings(args.stop_tols, K), H,
                            model, args.repeats)
        torch.set_num_threads(default_threads)


if __name__ == "__main__":
    main()
