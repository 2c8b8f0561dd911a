"""Profiles: the paper's offline data size per task, and the data mix scaled to a step budget."""

from __future__ import annotations

import dataclasses

import pytest

from latco.envs import TASKS
from latco.paper.profiles import PAPER_STEPS, DataConfig, get_profile


def test_paper_profile_collects_the_papers_200k_steps_per_task():
    paper = get_profile("paper")
    for name, spec in TASKS.items():
        cfg = paper.data_for(name)
        steps = cfg.train_episodes * spec.t_tot
        assert abs(steps - PAPER_STEPS) <= 2 * spec.t_tot, (name, steps)
        # the 2 : 1 : 1 mix of noisy oracle, random and greedy episodes, up to rounding
        assert cfg.random_episodes == cfg.greedy_episodes and abs(cfg.episodes - 2 * cfg.random_episodes) <= 1
    quick_obstacle = get_profile("quick").data_for("obstacle")
    assert quick_obstacle.train_episodes * TASKS["obstacle"].t_tot == pytest.approx(PAPER_STEPS, abs=60)
    with pytest.raises(ValueError, match="unknown task"):
        get_profile("quick").data_for("cartpole")


def test_scaled_to_keeps_the_mix_and_at_least_one_episode_of_each_kind():
    mix = DataConfig(episodes=100, noise=0.3, heldout=10, random_episodes=50, random_hold=5,
                     greedy_episodes=50)
    scaled = mix.scaled_to(60_000, 150)
    assert (scaled.episodes, scaled.random_episodes, scaled.greedy_episodes) == (200, 100, 100)
    assert (scaled.noise, scaled.heldout, scaled.random_hold) == (0.3, 10, 5)
    tiny = mix.scaled_to(10, 150)
    assert (tiny.episodes, tiny.random_episodes, tiny.greedy_episodes) == (1, 1, 1)
    dashes = dataclasses.replace(mix, dash_episodes=50).scaled_to(60_000, 150)
    assert (dashes.episodes, dashes.random_episodes, dashes.greedy_episodes, dashes.dash_episodes) == (
        160, 80, 80, 80)
    decoys = dataclasses.replace(mix, greedy_episodes=0, decoy_episodes=50).scaled_to(60_000, 150)
    assert (decoys.episodes, decoys.random_episodes, decoys.greedy_episodes, decoys.decoy_episodes) == (
        200, 100, 0, 100) and decoys.train_episodes == 400
    none = DataConfig(episodes=0, noise=0.3, heldout=1, random_episodes=0, random_hold=5, greedy_episodes=0)
    with pytest.raises(ValueError, match="no episodes"):
        none.scaled_to(1000, 30)


def test_online_runs_per_task_and_the_seeds_switch():
    paper, quick = get_profile("paper"), get_profile("quick")
    # the paper's Table 1: every task, 3 seeds, one online budget for all tasks; Push starts from the
    # offline data and model ("offline data plus further online interaction"), the others from scratch
    assert paper.online_tasks == tuple(TASKS) and paper.online_seeds == (0, 1, 2)
    assert {t: paper.online_for(t).start for t in TASKS} == {"obstacle": "scratch", "reach": "scratch",
                                                            "push": "offline"}
    budget = {"start": "scratch", "seed_episodes": 0, "initial_train_steps": 0}
    assert all(dataclasses.replace(paper.online_for(t), **budget)
               == dataclasses.replace(paper.online, **budget) for t in TASKS)
    # quick: Sawyer runs offline -> online (from scratch, 3000 env steps taught no planner a sparse task)
    assert {t: quick.online_for(t).protocol for t in TASKS} == {
        "obstacle": "from scratch", "reach": "offline → online", "push": "offline → online"}
    with pytest.raises(ValueError, match="online start must be one of scratch, offline"):
        dataclasses.replace(quick.online, start="pretrained")
    # quick: every task, Sawyer tasks on their own (cheaper) budget, Obstacle on the shared one
    assert quick.online_tasks == tuple(TASKS)
    assert quick.online_for("obstacle") == quick.online
    assert quick.online_for("reach") == quick.task_online["reach"] != quick.online
    assert quick.online_for("reach").explore_noise == paper.online.explore_noise == 0.3  # Algorithm 1's noise
    # the grid: quick runs one seed per task, the paper 3; task_online_seeds gives a task its own
    assert len(paper.online_runs()) == 27 and len(set(paper.online_runs())) == 27
    # quick: task_online_planners leaves GD out of the Sawyer runs (the paper runs every planner)
    assert quick.online_runs() == [("obstacle", p, 0) for p in ("latco", "cem", "gd")] + [
        (t, p, 0) for t in ("reach", "push") for p in ("latco", "cem")]
    every = dataclasses.replace(quick, task_online_planners={})
    assert every.online_runs() == [(t, p, 0) for t in TASKS for p in ("latco", "cem", "gd")]
    runs = dataclasses.replace(every, task_online_seeds={"obstacle": (0, 1, 2)}).online_runs()
    assert {(t, s) for t, _, s in runs} == {("obstacle", 0), ("obstacle", 1), ("obstacle", 2), ("reach", 0),
                                            ("push", 0)}
    assert len(runs) == 5 * 3 and {p for _, p, _ in runs} == {"latco", "cem", "gd"}
    with pytest.raises(ValueError, match="task_online_planners"):
        dataclasses.replace(quick, task_online_planners={"reach": ("latco", "nope")})
    with pytest.raises(ValueError, match="task_online_planners"):
        dataclasses.replace(quick, task_online_planners={"cartpole": ("latco",)})
    # snakemake --config seeds=N: N seeds on every task
    assert every.with_seeds(3).online_runs() == paper.online_runs() and quick.with_seeds(None) is quick
    assert len(quick.with_seeds(3).online_runs()) == 3 * 7
    assert len(every.with_seeds(1).online_runs()) == 9
    assert quick.with_seeds(3).online_for("push") == quick.online_for("push")
    with pytest.raises(ValueError, match="positive number"):
        quick.with_seeds(0)
    with pytest.raises(ValueError, match="unknown task"):
        quick.online_for("cartpole")


def test_offline_runs_cover_every_model_and_the_closed_loop_rows():
    from latco.paper import paths
    from latco.paper.profiles import get_profile

    quick = get_profile("quick")
    assert quick.model_seeds("obstacle") == (0, 1, 2) and quick.model_seeds("reach") == (0,)
    assert quick.model_seeds("obstacle", seed=5) == (5, 6, 7)
    runs = quick.offline_runs()
    assert len(runs) == 3 * 3 + 2 * 3 + 3  # 3 Obstacle models, 1 Reach, 1 Push; every planner closed loop
    assert ("obstacle", "gd", 2, None) in runs and ("obstacle", "latco", 0, 10) in runs
    assert ("obstacle", "gd", 0, 10) in runs and ("obstacle", "gd", 1, 10) not in runs
    assert quick.with_overrides({"closed_loop_planners": ["latco"]}).closed_loop_planner_names() == ("latco",)
    # closed loop on Table 2's first 30 starts, open loop on all 100
    assert quick.offline_episodes("obstacle") == 100 and quick.offline_episodes("obstacle", 10) == 30
    assert quick.offline_episodes("reach", 10) == 20
    with pytest.raises(ValueError, match="closed_loop_episodes must be >= 1"):
        quick.with_overrides({"closed_loop_episodes": 0})
    with pytest.raises(ValueError, match="closed_loop_planners.*mppi"):
        quick.with_overrides({"closed_loop_planners": ["mppi"]})
    assert not [r for r in runs if r[0] != "obstacle" and (r[2] or r[3])]
    assert get_profile("paper").offline_runs() == [(t, p, 0, None) for t in ("obstacle", "reach", "push")
                                                   for p in ("latco", "cem", "gd")]
    # the first model keeps the folders results had before there were several
    assert paths.model_dir("r", "obstacle").as_posix() == "r/models/obstacle"
    assert paths.model_dir("r", "obstacle", 2).as_posix() == "r/models/obstacle_seed2"
    assert paths.offline_dir("r", "obstacle", "cem").as_posix() == "r/offline/obstacle/cem"
    closed = paths.offline_dir("r", "obstacle", "cem", 1, 10)
    assert closed.as_posix() == "r/offline/obstacle_seed1/cem_tcache10"
