"""Profiles: one workflow, three sizes.

- ``paper``: the paper's and the authors' settings (for a GPU; days).
- ``quick``: the default; the whole paper rebuilt on a 2-core CPU, same code paths, smaller budgets.
- ``smoke``: seconds per notebook; what tests and CI run.

A profile is a set of named blocks (world model, training, data); later stages add theirs.
Numbers that differ from the paper are listed in the README next to the results they produce.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, replace

from latco.envs.tasks import TASKS, task_spec
from latco.model import WorldModelConfig
from latco.train import TrainConfig


@dataclass(frozen=True)
class DataConfig:
    """How much oracle data the offline experiments collect per task."""

    episodes: int
    """Oracle episodes per task (each lasts the task's t_tot steps)."""
    noise: float
    """Std of the Gaussian noise added to the oracle's actions (diversifies the data)."""
    heldout: int
    """Extra episodes, with another seed, kept out of training to evaluate the model."""
    random_episodes: int
    """Episodes of uniformly random actions added to the training data. Without them the model
    never sees the oracle fail (e.g. hit Obstacle's wall) and planners exploit that blind spot."""
    random_hold: int
    """Each random action is held for this many steps, so the agent travels and meets obstacles."""
    greedy_episodes: int
    """Episodes of a noisy straight-to-the-goal policy (``latco.envs.greedy``): the greedy failure
    (Obstacle: stuck at the wall) that the paper's dense-reward oracle agent went through."""
    oracle_pass: tuple[float, float] | None = None
    """Obstacle: the range from which each oracle episode draws the height ``|y|`` at which it goes
    around the wall (``latco.envs.Oracle``); None: always 0.75, well clear of the wall's end."""
    dash_episodes: int = 0
    """Obstacle: episodes that dash at the wall's end and turn to the goal's height, with action
    noise ``noise`` (``latco.envs.CornerDash``, heights 0.2-1, dashes of 1-5 steps): fast approaches
    that clear the corner or are stopped by it, where an optimizer's shortest way goes."""

    decoy_episodes: int = 0
    """Push: noisy-oracle episodes whose expert aims ``decoy_offset`` beside the puck (``Oracle``'s
    ``aim_offset``): it comes down, closes the gripper on nothing and moves to the goal while the
    puck stays, so the model sees a hand near the puck that does not carry it."""
    decoy_offset: tuple[float, float] = (0.05, 0.10)
    """Push: the range (m) of the decoy episodes' aiming offset from the puck."""

    def scaled_to(self, steps: int, episode_steps: int) -> DataConfig:
        """The same oracle : random : greedy mix with about ``steps`` env steps of training data,
        for episodes of ``episode_steps`` steps (each kind keeps at least one episode)."""
        parts = [self.episodes, self.random_episodes, self.greedy_episodes, self.dash_episodes,
                 self.decoy_episodes]
        if sum(parts) == 0:
            raise ValueError("this DataConfig collects no episodes; there is no mix to scale")
        counts = [max(round(p / sum(parts) * steps / episode_steps), int(p > 0)) for p in parts]
        return replace(self, episodes=counts[0], random_episodes=counts[1], greedy_episodes=counts[2],
                       dash_episodes=counts[3], decoy_episodes=counts[4])

    @property
    def train_episodes(self) -> int:
        return (self.episodes + self.random_episodes + self.greedy_episodes + self.dash_episodes
                + self.decoy_episodes)


@dataclass(frozen=True)
class OnlineConfig:
    """Online training (Algorithm 1): seed data, then alternate acting with the planner and training."""

    seed_episodes: int
    """Episodes of uniformly random actions collected before the first plan (authors: 5000 steps)."""
    seed_hold: int
    """Each seed episode's random action is held for this many steps (authors: 1). Obstacle's
    actions are target positions: fresh ones every step average out and the agent hovers in front
    of the wall (2 of 20 seed episodes got past it; held 5 steps: 17), so the model barely sees
    the far side and no planner has a reason to go there."""
    episodes: int
    """Episodes collected with the planner (plus exploration noise) after the seed data."""
    initial_train_steps: int
    """Gradient steps on the seed data before the first planner episode."""
    train_steps_per_episode: int
    """Gradient steps after each collected episode (authors: 15 per 150 env steps)."""
    explore_noise: float
    """Std of the Gaussian noise added to executed actions while collecting (paper: 0.3)."""
    eval_every: int
    """Evaluate the agent (no noise) after every this many collected episodes."""
    eval_episodes: int
    """Episodes per evaluation."""
    eval_at_start: bool = True
    """Also evaluate before the first planner episode (the model of the seed data, or the offline
    model). An offline → online run can skip it: Table 2 evaluates that same offline model."""
    start: str = "scratch"
    """``"scratch"``: Algorithm 1 from random seed episodes. ``"offline"``: the paper's Push protocol
    ("offline data plus further online interaction"): start from the task's offline world model and
    train on its offline data plus the collected episodes; ``seed_episodes`` and
    ``initial_train_steps`` are then unused (the offline data and model take their place)."""

    def __post_init__(self) -> None:
        if self.start not in ONLINE_STARTS:
            raise ValueError(f"online start must be one of {', '.join(ONLINE_STARTS)}; got {self.start!r}")

    @property
    def protocol(self) -> str:
        """How Table 1 labels runs of this config."""
        return ONLINE_STARTS[self.start]


ONLINE_STARTS = {"scratch": "from scratch", "offline": "offline → online"}
"""``OnlineConfig.start`` values and Table 1's label for each."""


@dataclass(frozen=True)
class TimingConfig:
    """Notebook 14's measurements: seconds per plan, return against wall time, LM time against H."""

    budget_s: float | None
    """A plan longer than this is timed over fewer iterations and scaled (None: every plan in full)."""
    compare_paper: bool
    """Also time every planner at the paper's settings where the profile's budget differs, and race
    paper-setting CEM (the reference) in the return-against-time plot."""
    paper_sized_model: bool
    """Time on a paper-sized model too, and measure the solver at the paper's feature size."""
    horizons: tuple[int, ...]
    """Horizons of the LM-iteration-time-against-H measurement (block-tridiagonal vs dense)."""
    repeats: int
    """Repeats per horizon (the median is reported)."""


TASK_FIXED_MODEL_FIELDS = ("image_size", "action_size")
"""World-model fields no task may set for itself: the data is rendered at the profile's image size, and
the action size is the task's."""
TASK_MODEL_FIELDS = tuple(f.name for f in dataclasses.fields(WorldModelConfig)
                          if f.name not in TASK_FIXED_MODEL_FIELDS)
"""The world-model fields ``Profile.task_world_model`` may set for one task."""


@dataclass(frozen=True)
class Profile:
    """All budgets of one profile."""

    name: str
    world_model: WorldModelConfig
    """Model sizes; ``action_size`` is set per task by ``world_model_config``."""
    train: TrainConfig
    """World-model optimization."""
    data: DataConfig
    """Offline data collection (tasks not in ``task_data``)."""
    online: OnlineConfig
    """Online training (Table 1)."""
    eval_fraction: float
    """Evaluation episodes as a fraction of the paper's (100 Obstacle, 20 Reach/Push), rounded up."""
    planners: dict[str, dict[str, object]]
    """Per planner, the options that differ from its config's defaults (which are the paper's,
    App. B). ``make_profile_planner`` applies them; unlisted planners run at paper settings."""
    offline_planners: tuple[str, ...] = ("latco", "cem", "gd")
    """Planners of the offline experiment (Tables 2 and 3), each on the same model per task."""
    online_tasks: tuple[str, ...] = ("obstacle", "reach", "push")
    """Tasks of the online experiment (Table 1)."""
    online_planners: tuple[str, ...] = ("latco", "cem", "gd")
    """Planners of the online experiment (Table 1); one run per (task, planner, seed)."""
    task_online_planners: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per-task planners of the online experiment where they differ from ``online_planners``."""
    online_seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds of the online experiment (the paper: 3 per planner and task)."""
    task_online_seeds: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """Per-task seeds where they differ from ``online_seeds`` (what the budget affords per task)."""
    task_data: dict[str, DataConfig] = field(default_factory=dict)
    """Per-task offline data where it differs from ``data`` (episode lengths differ: Obstacle 30
    steps, Reach 150, Push 120, so equal step budgets need different episode counts)."""

    task_world_model: dict[str, dict[str, object]] = field(default_factory=dict)
    """Per task, ``WorldModelConfig`` fields that differ from ``world_model`` (e.g. ``{"push":
    {"kl_balance": 0.8}}``), for every model of that task: offline, online and the planners' imagination.
    ``world_model_for`` applies them; an override of ``world_model`` still reaches the other fields."""
    task_train_steps: dict[str, int] = field(default_factory=dict)
    """Per-task gradient steps of the offline world model where they differ from ``train.steps``."""
    task_models: dict[str, int] = field(default_factory=dict)
    """Per task, how many offline world models are trained on the same data, with seeds ``seed``,
    ``seed + 1``, ... (default 1). Tables 2 and 3 pool every model's evaluations and report the
    spread over models: one training run can be lucky or exploited (``model_seeds``)."""
    closed_loop: dict[str, int] = field(default_factory=dict)
    """Beyond the paper: per task, a ``T_cache`` for extra offline evaluations of every planner that
    re-plan every ``T_cache`` steps on the first model (the paper executes each plan of H steps
    for T_cache = H steps, open loop). Table 2 shows them as their own rows."""
    closed_loop_planners: tuple[str, ...] = ()
    """The planners of the ``closed_loop`` evaluations (empty: every offline planner)."""
    closed_loop_episodes: int | None = None
    """The ``closed_loop`` evaluations run on the first this many of the task's offline start states
    (the same starts as Table 2's first episodes; None: all of them)."""
    task_online: dict[str, OnlineConfig] = field(default_factory=dict)
    """Per-task online training where it differs from ``online`` (a Sawyer episode is 4-5 times
    longer than an Obstacle one and renders every step, so equal episode counts cost unequal time)."""
    gpu: bool = False
    """Models and planners want a GPU: the Snakefile asks a cluster for one per heavy job and gives
    each 4 threads (on CPUs: 1 thread per job, so two jobs share 2 cores)."""
    figures_dir: str = "figures"
    """Where the figures and tables go, relative to the checkout (``latco.paper.paths.figures_dir``)."""
    timing: TimingConfig = TimingConfig(budget_s=None, compare_paper=False, paper_sized_model=True,
                                        horizons=(10, 30, 60, 120), repeats=3)
    """Notebook 14's measurements."""
    overrides: dict[str, object] = field(default_factory=dict)
    """The dotted-path overrides this profile was made with (``with_overrides``; empty: as defined)."""

    def with_overrides(self, overrides: dict[str, object] | None) -> Profile:
        """This profile with ``{"planners.latco.iterations": 100, ...}`` applied (``latco.paper.settings``);
        an unknown path or a value of the wrong type raises ``SettingsError`` naming the valid ones."""
        from latco.paper.settings import apply_overrides

        return apply_overrides(self, overrides)

    def world_model_for(self, task: str) -> WorldModelConfig:
        """The world model of ``task``: ``world_model`` with ``task_world_model``'s fields and the task's
        action size."""
        spec = task_spec(task)
        return replace(self.world_model, **self.task_world_model.get(spec.name, {}),
                       action_size=spec.action_size)

    def train_for(self, task: str) -> TrainConfig:
        """The offline world model's training of ``task`` (``train`` with ``task_train_steps``)."""
        steps = self.task_train_steps.get(task_spec(task).name)
        return self.train if steps is None else replace(self.train, steps=steps)

    def with_seeds(self, seeds: int | None) -> Profile:
        """This profile with online seeds 0..seeds-1 (``snakemake --config seeds=3``; None: as is)."""
        if seeds is None:
            return self
        if int(seeds) < 1:
            raise ValueError(f"seeds must be a positive number of runs per (task, planner), got {seeds}")
        return replace(self, online_seeds=tuple(range(int(seeds))), task_online_seeds={})

    def online_runs(self) -> list[tuple[str, str, int]]:
        """The online experiment's grid, (task, planner, seed) per run (Table 1; the Snakefile's jobs)."""
        return [(task, planner, seed) for task in self.online_tasks
                for planner in self.task_online_planners.get(task, self.online_planners)
                for seed in self.task_online_seeds.get(task, self.online_seeds)]

    def model_seeds(self, task: str, seed: int = 0) -> tuple[int, ...]:
        """Training seeds of ``task``'s offline world models: ``seed``, ``seed + 1``, ... (``task_models``).
        """
        return tuple(seed + k for k in range(self.task_models.get(task_spec(task).name, 1)))

    def offline_runs(self, seed: int = 0) -> list[tuple[str, str, int, int | None]]:
        """The offline experiment's grid, (task, planner, model seed, T_cache or None for the task's)
        per evaluation (Tables 2 and 3; the Snakefile's jobs): every planner on every model, then the
        closed-loop evaluations of ``closed_loop`` on the first model."""
        from latco.envs import TASKS

        runs: list[tuple[str, str, int, int | None]] = [
            (task, planner, model_seed, None) for task in TASKS for model_seed in self.model_seeds(task, seed)
            for planner in self.offline_planners]
        runs += [(task, planner, seed, t_cache) for task, t_cache in self.closed_loop.items()
                 for planner in self.closed_loop_planner_names()]
        return runs

    def __post_init__(self) -> None:
        if self.closed_loop_episodes is not None and self.closed_loop_episodes < 1:
            raise ValueError("closed_loop_episodes must be >= 1 (or None: all), "
                             f"got {self.closed_loop_episodes}")
        stray = [p for p in self.closed_loop_planners if p not in self.offline_planners]
        if stray:
            raise ValueError(f"closed_loop_planners {stray} are not offline planners "
                             f"({', '.join(self.offline_planners)}): a closed-loop row compares with their "
                             "open-loop rows")
        for task, fields in self.task_world_model.items():
            if task not in TASKS or set(fields) - set(TASK_MODEL_FIELDS):
                raise ValueError(f"task_world_model[{task!r}] = {fields!r}: name a task ({', '.join(TASKS)}) "
                                 f"and fields of WorldModelConfig ({', '.join(TASK_MODEL_FIELDS)}); "
                                 f"{', '.join(TASK_FIXED_MODEL_FIELDS)} cannot differ per task")
        from latco.planners import available_planners

        for task, names in self.task_online_planners.items():
            unknown = [p for p in names if p not in available_planners()]
            if task not in TASKS or unknown or not names:
                raise ValueError(f"task_online_planners[{task!r}] = {names!r}: name a task "
                                 f"({', '.join(TASKS)}) and one or more planners from "
                                 f"{', '.join(available_planners())}")

    def offline_episodes(self, task: str, t_cache: int | None = None) -> int:
        """Episodes of an offline evaluation of ``task``: the paper's count scaled by ``eval_fraction``;
        a closed-loop one (``t_cache``) at most ``closed_loop_episodes``."""
        episodes = eval_episodes(self, task_spec(task).eval_episodes)
        if t_cache is not None and self.closed_loop_episodes is not None:
            episodes = min(episodes, self.closed_loop_episodes)
        return episodes

    def closed_loop_planner_names(self) -> tuple[str, ...]:
        """The planners evaluated closed loop (``closed_loop_planners``, else every offline planner)."""
        return self.closed_loop_planners or tuple(self.offline_planners)

    def online_for(self, task: str) -> OnlineConfig:
        """The online training of ``task`` (``task_online`` if listed, else ``online``)."""
        return self.task_online.get(task_spec(task).name, self.online)

    def data_for(self, task: str) -> DataConfig:
        """The offline data of ``task`` (``task_data`` if listed, else ``data``)."""
        return self.task_data.get(task_spec(task).name, self.data)


PAPER_STEPS = 200_000
"""Offline env steps per task in the paper (App. "Offline training": 200K pre-collected steps)."""


_MIX = DataConfig(episodes=2, noise=0.3, heldout=20, random_episodes=1, random_hold=5, greedy_episodes=1)
"""The offline data's mix: noisy oracle : random (actions held 5 steps) : greedy episodes = 2 : 1 : 1."""

_PAPER_ONLINE = OnlineConfig(seed_episodes=40, seed_hold=1, episodes=2000, initial_train_steps=5000,
                             train_steps_per_episode=100, explore_noise=0.3, eval_every=50, eval_episodes=20)

PAPER = Profile(
    name="paper",
    world_model=WorldModelConfig(),  # 64 px, depth 32, stoch 30, deter 200, hidden 200, reward 2x400
    train=TrainConfig(steps=100_000, batch=50, length=50),
    # the paper pre-collects 200K steps per task (App. "Offline training"): our mix of noisy
    # oracle : random : greedy episodes (2 : 1 : 1) scaled to 200K steps of each task
    data=_MIX.scaled_to(PAPER_STEPS, TASKS["obstacle"].t_tot),
    task_data={name: _MIX.scaled_to(PAPER_STEPS, spec.t_tot) for name, spec in TASKS.items()},
    # ~24 h per agent in the paper; 5000 prefill steps and 15 gradient steps per 150 env steps
    online=_PAPER_ONLINE,
    # Push: "offline data plus further online interaction" (the paper's Sawyer Push protocol)
    task_online={"push": replace(_PAPER_ONLINE, start="offline", seed_episodes=0, initial_train_steps=0)},
    eval_fraction=1.0,
    planners={},  # every planner at its paper settings (App. B; the configs' defaults)
    gpu=True,
)
"""The paper's and the authors' settings; the other profiles are written as differences from it."""

QUICK = replace(
    PAPER,
    name="quick",
    # Why each setting differs from the paper, with the measurements: docs/world_models.md, "Quick
    # profile choices" (planner budgets: docs/performance.md, "The quick planner budgets").
    # depth 16: at 8 the decoder drew no Obstacle agent; free nats 1: at 3 the Push model ignored its
    # actions and the Obstacle model was easy to exploit (studies/free_nats.py)
    world_model=replace(PAPER.world_model, image_size=32, depth=16, stoch=16, deter=64, hidden=128,
                        reward_hidden=128, free_nats=1.0),
    # balance 0.5: half of each batch from windows that hold a success (Reach plans better with it);
    # channels_last: the same model up to rounding, 0.93x the step on CPUs (docs/performance.md)
    train=replace(PAPER.train, steps=3000, batch=16, length=32, checkpoint_every=250, balance=0.5,
                  channels_last=True),
    data=DataConfig(episodes=100, noise=0.3, heldout=10,
                    random_episodes=50, random_hold=5, greedy_episodes=50),
    # Obstacle: the paper's 200K steps (cheap to collect); Reach and Push: 60K (render-bound)
    task_data={"obstacle": replace(_MIX, heldout=10).scaled_to(PAPER_STEPS, TASKS["obstacle"].t_tot),
               **{task: replace(_MIX, heldout=10).scaled_to(60_000, TASKS[task].t_tot)
                  for task in ("reach", "push")}},
    # Obstacle 6000: the best of 3000 / 6000 / 9000 on 20 starts (docs/studies.md); Reach 12 000: it
    # separated LatCo from CEM and GD on Reach (0.35 against 0 and 0; at 8000 0.20 / 0.15 / 0.10) and
    # stopped promising CEM 90 reward for plans that earn 1 (docs/results.md); Push 8000: 12 000
    # changed neither its success nor its probe (docs/world_models.md), and both at 12 000 do not fit
    # the 2-hour budget beside three Obstacle models (docs/performance.md)
    task_train_steps={"obstacle": 6000, "reach": 12_000, "push": 8000},
    # 20 planner episodes: every planner's curve had peaked by 20 of 30 (docs/results.md)
    online=OnlineConfig(seed_episodes=20, seed_hold=5, episodes=20, initial_train_steps=1500,
                        train_steps_per_episode=50, explore_noise=0.3, eval_every=10, eval_episodes=10),
    eval_fraction=1.0,  # the paper's counts: 100 Obstacle, 20 Reach and Push episodes
    # about equal wall time per plan on the quick model; LatCo 4 x 50 in one batch, steadier than 1 x 200
    planners={
        "latco": {"n_plans": 4, "iterations": 50},
        "cem": {"iterations": 30, "samples": 1000, "elites": 100},
        "mppi": {"iterations": 30, "samples": 1000},
        "gd": {"iterations": 100},
        "latco-first-order": {"iterations": 400},
    },
    # Reach and Push: offline -> online (the paper's Push protocol); from scratch no planner learned them.
    # No evaluation at episode 0: it re-evaluated the offline model (Table 2's) for ~16 job-minutes.
    # 5 planner episodes with 200 gradient steps after each (the 1000 steps of 10 x 100, half the
    # collection time), LatCo and CEM only: GD's runs scored 0 at every evaluation of two rebuilds
    # (docs/performance.md); the paper profile runs all three
    task_online={task: OnlineConfig(seed_episodes=0, seed_hold=5, episodes=5, initial_train_steps=0,
                                    train_steps_per_episode=200, explore_noise=0.3, eval_every=5,
                                    eval_episodes=10, eval_at_start=False, start="offline")
                 for task in ("reach", "push")},
    task_online_planners={task: ("latco", "cem") for task in ("reach", "push")},
    # one seed per (task, planner) (what 2 cores afford within 2 hours, docs/performance.md); the
    # paper's 3 with `snakemake --config seeds=3`
    online_seeds=(0,),
    # Obstacle's open-loop success depends on the training run: Table 2 pools 3 models, and re-plans
    # every 10 steps in extra rows for every planner (beyond the paper; docs/studies.md), to show how
    # much of each planner's result depends on executing 30 steps blind
    task_models={"obstacle": 3},
    closed_loop={"obstacle": 10},
    # 30 starts: 50 took 13.8 job-min, and the first 30 of those 50 gave the same rates (LatCo and CEM
    # 1.00, GD 0.73 against 0.76; rebuild of 2026-12-05)
    closed_loop_episodes=30,
    gpu=False,
    timing=replace(PAPER.timing, budget_s=20.0, compare_paper=True),
)
"""The default: the whole paper rebuilt on a 2-core CPU, same code paths, smaller budgets."""

SMOKE = replace(
    QUICK,
    name="smoke",
    world_model=replace(QUICK.world_model, depth=4, stoch=4, deter=8, hidden=16, reward_hidden=16,
                        free_nats=3.0),
    train=TrainConfig(steps=10, batch=4, length=8, checkpoint_every=5, log_every=5),
    data=DataConfig(episodes=3, noise=0.3, heldout=2, random_episodes=1, random_hold=5, greedy_episodes=1),
    task_data={},
    task_train_steps={},
    # Sawyer runs start from the offline model, as on quick, so the workflow test covers both starts
    task_online={task: OnlineConfig(seed_episodes=0, seed_hold=5, episodes=2, initial_train_steps=0,
                                    train_steps_per_episode=2, explore_noise=0.3, eval_every=1,
                                    eval_episodes=1, start="offline")
                 for task in ("reach", "push")},
    task_online_seeds={},
    task_models={"obstacle": 2},  # the workflow test covers a task's second model and a closed-loop row
    online=OnlineConfig(seed_episodes=2, seed_hold=5, episodes=2, initial_train_steps=4,
                        train_steps_per_episode=2, explore_noise=0.3, eval_every=1, eval_episodes=1),
    eval_fraction=0.02,
    planners={
        "latco": {"iterations": 10},
        "latco-no-relax": {"iterations": 10},
        "latco-first-order": {"iterations": 10},
        "cem": {"iterations": 3, "samples": 50, "elites": 5},
        "mppi": {"iterations": 3, "samples": 50},
        "icem": {"iterations": 3, "samples": 50, "elites": 5},
        "gd": {"iterations": 10},
    },
    figures_dir="results/smoke/figures",  # tests and CI never overwrite the committed figures
    timing=TimingConfig(budget_s=1.0, compare_paper=False, paper_sized_model=False, horizons=(5, 10),
                        repeats=1),
)
"""Seconds per notebook: what tests and CI run."""

PROFILES: dict[str, Profile] = {p.name: p for p in (PAPER, QUICK, SMOKE)}

DEFAULT_PROFILE = "quick"


def get_profile(name: str = DEFAULT_PROFILE) -> Profile:
    """The profile called ``name``; raises ValueError listing the valid names otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of: {', '.join(PROFILES)}") from None


def eval_episodes(profile: Profile, task_eval_episodes: int) -> int:
    """Evaluation episodes for a task whose paper count is ``task_eval_episodes`` (at least 1)."""
    return max(1, math.ceil(profile.eval_fraction * task_eval_episodes))


def make_profile_planner(profile: Profile, name: str, **overrides: object):
    """Planner ``name`` with the profile's budget, then ``overrides`` on top (e.g. from a notebook)."""
    from latco.planners import make_planner  # planners import the model; keep profiles import-light

    return make_planner(name, **{**profile.planners.get(name, {}), **overrides})


def world_model_config(profile: Profile, action_size: int) -> WorldModelConfig:
    """The profile's shared model settings with ``action_size``-dimensional actions, for models not of one
    task (benchmarks, random models); a task's model is ``Profile.world_model_for`` (with
    ``task_world_model``)."""
    return replace(profile.world_model, action_size=action_size)
