"""Measurements shared by ``benchmarks/`` and notebook 14: planning time, return vs wall time, solver scaling.

Every planner is scored by one yardstick: the model return Σ_t r(z_{t+1}) of its current actions,
clipped to the action box and rolled out through μ from the same start feature
(``latco.planners.evaluate.rollout_return``). LatCo's own trace scores its planned latents, which
may still violate the dynamics, so the curves here use each planner's action snapshots instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from latco.model import RSSM, WorldModelConfig
from latco.paper.profiles import Profile
from latco.planners import LatentModel, make_planner  # noqa: F401  (make_planner re-exported for tests)
from latco.planners.evaluate import rollout_return

PlannerSpec = tuple[str, Mapping[str, object]]
"""(planner name, config overrides), e.g. ("cem", {"iterations": 30, "samples": 1000})."""


def random_model(config: WorldModelConfig, seed: int = 0) -> RSSM:
    """An RSSM with random weights, frozen: a timing stand-in for a trained model of that size."""
    torch.manual_seed(seed)
    model = RSSM(config).eval()
    model.requires_grad_(False)
    return model


def seconds_per_plan(model: LatentModel, spec: PlannerSpec, z0: torch.Tensor, horizon: int,
                     budget_s: float | None = None) -> tuple[float, bool]:
    """Wall seconds of one plan; ``(seconds, extrapolated)``.

    A one-iteration plan is timed first (after another as warm-up). With ``budget_s``, if the full plan
    would take longer, only as many iterations as fit the budget are timed and the time is scaled
    linearly to the full count (every iteration of every planner here costs the same; the fixed
    cost is measured by the one-iteration plan and added once), so paper-setting CEM on a CPU need
    not run for minutes.
    """
    name, overrides = spec
    iterations = int(make_planner(name, **overrides).config.iterations)
    make_planner(name, **{**overrides, "iterations": 1}).plan(model, z0, horizon)  # warm-up
    start = time.perf_counter()
    make_planner(name, **{**overrides, "iterations": 1}).plan(model, z0, horizon)
    one = time.perf_counter() - start
    probe = iterations
    if budget_s is not None and one * iterations > budget_s:
        probe = int(min(iterations, max(2, budget_s / max(one, 1e-9))))
    start = time.perf_counter()
    make_planner(name, **{**overrides, "iterations": probe}).plan(model, z0, horizon)
    seconds = time.perf_counter() - start
    if probe == iterations:
        return seconds, False
    per_iteration = max(seconds - one, 0.0) / (probe - 1)
    return one + per_iteration * (iterations - 1), True


def planning_time_table(models: Mapping[str, LatentModel], planners: Mapping[str, PlannerSpec],
                        horizon: int, budget_s: float | None = None) -> pd.DataFrame:
    """Seconds per ``horizon``-step plan: one row per planner label, one column per model label.

    ``<model> extrapolated`` columns say which cells were timed over fewer iterations and scaled
    (see ``seconds_per_plan``). Start features are random (time does not depend on them).
    """
    rows = []
    for label, spec in planners.items():
        row: dict[str, object] = {"planner": label}
        for model_label, model in models.items():
            z0 = torch.randn(model.feature_size, generator=torch.Generator().manual_seed(1))
            row[model_label], row[f"{model_label} extrapolated"] = seconds_per_plan(model, spec, z0, horizon,
                                                                                    budget_s)
        rows.append(row)
    return pd.DataFrame(rows)


TIMED_PLANNERS = ("latco", "latco-fast", "cem", "gd", "mppi", "icem", "latco-no-relax", "latco-first-order")
"""Every registered planner (``latco.planners.available_planners``), in the order tables list them."""


def timing_specs(profile: Profile) -> dict[str, PlannerSpec]:
    """Each planner at the profile's budget, labelled ``name (profile)``, and with
    ``TimingConfig.compare_paper`` also at the paper's settings where they differ (``name (paper)``)."""
    from latco.planners import available_planners

    if sorted(TIMED_PLANNERS) != sorted(available_planners()):
        raise RuntimeError(f"TIMED_PLANNERS {TIMED_PLANNERS} and the registry {available_planners()} differ")
    specs: dict[str, PlannerSpec] = {f"{n} ({profile.name})": (n, profile.planners.get(n, {}))
                                      for n in TIMED_PLANNERS}
    if profile.timing.compare_paper:
        specs.update({f"{n} (paper)": (n, {}) for n in TIMED_PLANNERS if profile.planners.get(n)})
    return specs


def timing_models(profile: Profile, action_size: int = 4) -> dict[str, RSSM]:
    """Random-weight models to time on: the profile's size, and the paper's if the profile says so."""
    own = random_model(replace(profile.world_model, action_size=action_size))
    models = {f"{profile.name}-sized model": own}
    if profile.timing.paper_sized_model and profile.world_model != WorldModelConfig(action_size=action_size):
        models["paper-sized model"] = random_model(WorldModelConfig(action_size=action_size))
    return models


def race_specs(profile: Profile) -> dict[str, PlannerSpec]:
    """The planners of the return-against-time plot: each at the profile's budget, plus paper-setting
    CEM (the reference of LatCo's speed goal) when ``TimingConfig.compare_paper``."""
    race = {k: v for k, v in timing_specs(profile).items() if k.endswith(f"({profile.name})")}
    if profile.timing.compare_paper:
        race["cem (paper)"] = ("cem", {})
    return race


def solver_model(profile: Profile, action_size: int = 4) -> RSSM:
    """The model of the solver-scaling measurement: paper-sized, or the profile's if it says so."""
    if profile.timing.paper_sized_model:
        return random_model(WorldModelConfig(action_size=action_size))
    return random_model(replace(profile.world_model, action_size=action_size))


@torch.no_grad()
def return_vs_time(model: LatentModel, starts: Sequence[torch.Tensor], planners: Mapping[str, PlannerSpec],
                   horizon: int, points: int = 25) -> pd.DataFrame:
    """Model return of each planner's current actions against wall time, per start feature.

    Columns: planner (the label), start, iteration, wall_time (s), return, and "LatCo objective",
    ½ Σ softplus(−r)² of the same actions' rollout (the paper's objective, which LatCo minimizes
    and the sampling planners do not: a plan can be better on one and worse on the other). Iteration 0 is the
    initialization at time 0; the snapshots are scored after planning, outside the timed loop.
    Start s uses planner seed s unless ``overrides`` fix one. The
    last row per start (iteration = iterations + 1) is the returned plan at the plan's whole wall
    time, so the curve ends at what the planner hands the agent (after LatCo's choice and polish).
    """
    rows = []
    for label, (name, overrides) in planners.items():
        iterations = int(make_planner(name, **overrides).config.iterations)
        every = max(1, iterations // points)
        for s, z0 in enumerate(starts):
            tick = time.perf_counter()
            # each start its own planner seed (as the evaluation reseeds per episode): one seed's
            # initialization would otherwise decide every start alike
            options = {"seed": s, **overrides, "record_every": every}
            plan = make_planner(name, **options).plan(model, z0, horizon)
            total = time.perf_counter() - tick
            trace = plan.trace
            snaps = torch.as_tensor(trace["snapshot_actions"], dtype=z0.dtype)
            returns = rollout_return(model, z0, snaps, action_max=1.0).double().numpy()
            objectives = latco_objective(model, z0, snaps).double().numpy()
            for k, ret, obj in zip(trace["snapshot_iteration"], returns, objectives, strict=True):
                t = 0.0 if k == 0 else float(trace["wall_time"][k - 1])
                rows.append(dict(planner=label, start=s, iteration=int(k), wall_time=t,
                                 **{"return": ret, "LatCo objective": obj}))
            final = float(rollout_return(model, z0, plan.actions, action_max=1.0))
            objective = float(latco_objective(model, z0, plan.actions))
            rows.append(dict(planner=label, start=s, iteration=iterations + 1, wall_time=total,
                             **{"return": final, "LatCo objective": objective}))
    return pd.DataFrame(rows)


@torch.no_grad()
def latco_objective(model: LatentModel, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """½ Σ_t softplus(−r(z_{t+1}))² along the rollout of ``actions`` (..., H, A) clipped to ±1 from
    z0: the paper's collocation objective once the dynamics hold (lower is better)."""
    from latco.planners.polish import shooting_objective

    actions = actions.clamp(-1.0, 1.0)
    flat = actions.reshape(-1, *actions.shape[-2:])
    objective = shooting_objective(model, z0.expand(len(flat), z0.shape[-1]), flat, None)
    return objective.reshape(actions.shape[:-2])


def time_to_reach(curves: pd.DataFrame, label: str, target: Mapping[int, float]) -> pd.Series:
    """Per start: the first wall time at which ``label``'s return reaches ``target[start]`` (NaN: never)."""
    out = {}
    for s, group in curves[curves.planner == label].groupby("start"):
        hit = group[group["return"] >= target[s]]
        out[s] = float(hit.wall_time.min()) if len(hit) else float("nan")
    return pd.Series(out, name=label)


def plot_return_vs_time(curves: pd.DataFrame, title: str = "") -> Figure:
    """Mean return over start states against mean wall time, one line per planner (log time)."""
    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    for i, (label, group) in enumerate(curves.groupby("planner", sort=False)):
        mean = group.groupby("iteration")[["wall_time", "return"]].mean()
        mean = mean[mean.wall_time > 0]
        style = "-" if i < 10 else "--"  # 10 colours, then dashed: every curve distinguishable
        ax.plot(mean.wall_time, mean["return"], style, color=f"C{i % 10}", label=label, lw=1.5)
    ax.set_xscale("log")
    ax.set_xlabel("wall time (s, log scale)")
    ax.set_ylabel("model return of the current actions")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- solver scaling
def _block_step(lin) -> torch.Tensor:
    from latco.solver import add_damping, block_cholesky, block_cholesky_solve

    ne = lin.normal_equations()
    factor = block_cholesky(add_damping(ne.diag, 1e-3), ne.lower, gram=ne.gram, overwrite=True)
    return block_cholesky_solve(factor, ne.grad)


def _dense_step(lin) -> torch.Tensor:
    from latco.solver import add_damping

    ne = lin.normal_equations()
    add_damping(ne.diag, 1e-3)
    L, info = torch.linalg.cholesky_ex(ne.dense()[0])
    if info != 0:
        raise np.linalg.LinAlgError("dense Cholesky failed")
    return torch.cholesky_solve(ne.grad.reshape(-1, 1), L)


def _median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


@torch.no_grad()
def solver_scaling(model: RSSM, horizons: Iterable[int], repeats: int = 5,
                   dense_budget: float = 120.0) -> pd.DataFrame:
    """Seconds per LatCo LM iteration against horizon H: block-tridiagonal vs dense Cholesky.

    Columns: horizon, model_s (model evaluation and Jacobians), block_s, dense_s, dense_measured.
    The dense solve runs only while its cubic extrapolation from the previous horizon fits
    ``dense_budget`` seconds (and 8 GB); otherwise ``dense_s`` is that extrapolation. The two solutions
    are checked to agree to 1e-8 wherever both run.
    """
    from latco.planners.latco import Multipliers

    planner = make_planner("latco")
    A, F = model.action_size, model.feature_size
    d, rows, dense_fit = A + F, [], None
    for H in sorted(horizons):
        g = torch.Generator().manual_seed(H)
        z0, x = torch.randn(F, generator=g), torch.randn(1, H, A + F, generator=g)
        duals = Multipliers(1, H, 1.0, 1.0)
        lin = planner.linearize(model, z0, x, duals)
        _block_step(lin)  # warm-up
        t_model = _median_s(lambda z0=z0, x=x, duals=duals: planner.linearize(model, z0, x, duals), repeats)
        t_block = _median_s(lambda lin=lin: _block_step(lin), repeats)
        predicted = None if dense_fit is None else dense_fit * (H * d) ** 3
        if predicted is None or (predicted < dense_budget and 2 * (H * d) ** 2 * 8 / 1e9 < 8):
            dense, block = _dense_step(lin), _block_step(lin)
            rel = float((dense.reshape(block.shape) - block).norm() / block.norm())
            if rel > 1e-8:
                raise AssertionError(f"block and dense LM steps differ at H={H}: relative {rel:.2e}")
            t_dense, measured = _median_s(lambda lin=lin: _dense_step(lin), 1), True
            dense_fit = t_dense / (H * d) ** 3
        else:
            t_dense, measured = predicted, False
        rows.append(dict(horizon=H, model_s=t_model, block_s=t_block, dense_s=t_dense,
                         dense_measured=measured))
    return pd.DataFrame(rows)


def plot_solver_scaling(table: pd.DataFrame, d: int) -> Figure:
    """ms per LM iteration (model included) against H, log-log, with a ∝ H guide."""
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    hs = table.horizon.to_numpy()
    block = 1e3 * (table.model_s + table.block_s).to_numpy()
    dense = 1e3 * (table.model_s + table.dense_s).to_numpy()
    measured = table.dense_measured.to_numpy(bool)
    ax.loglog(hs, block, "o-", color="C0", label="block-tridiagonal Cholesky")
    ax.loglog(hs[measured], dense[measured], "s-", color="C3", label="dense Cholesky (measured)")
    if (~measured).any():
        tail = np.flatnonzero(measured)[-1:].tolist() + np.flatnonzero(~measured).tolist()
        ax.loglog(hs[tail], dense[tail], "s--", color="C3", mfc="none", label="dense (cubic extrapolation)")
    ax.loglog(hs, block[0] * hs / hs[0], ":", color="gray", label="∝ H")
    ax.set_xticks(hs, [str(h) for h in hs])
    ax.set_xlabel("planning horizon H")
    ax.set_ylabel("ms per LM iteration")
    ax.set_title(f"LatCo LM iteration, d = {d} variables per step", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig
