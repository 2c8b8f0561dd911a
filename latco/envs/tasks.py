"""The three tasks of the paper and their planning settings (paper §6.1, Appendix A).

One frozen `TaskSpec` per task. Horizons, replanning interval and episode length are the
paper's; action repeat is the authors' released configuration (github zchuning/latco,
`config.yaml`): 1 for Reach and Push (only their extra Thermos/Hammer tasks use 2), and
1 for Obstacle, whose 5 physics substeps per action are its frame skip, not a repeat.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    """Everything about a task that code outside `latco.envs` may depend on."""

    name: str
    """Task name accepted by `make_env`: obstacle, reach or push."""
    horizon: int
    """H: planning horizon in agent steps."""
    t_cache: int
    """T_cache: planned actions executed before replanning."""
    t_tot: int
    """T_tot: agent steps per episode (the env's TimeLimit)."""
    action_repeat: int
    """Simulator steps per agent action (reward: the last substep's success when sparse)."""
    action_size: int
    """A: actions live in [-1, 1]^A."""
    eval_episodes: int
    """Evaluation runs the paper averages over."""
    sparse: bool
    """True: reward is 1 on success else 0. False: dense reward."""
    env_id: str
    """The registered gymnasium id, e.g. `latco/Obstacle-v0`."""


TASKS: dict[str, TaskSpec] = {
    # name, H, T_cache, T_tot, action repeat, A, eval runs
    "obstacle": TaskSpec("obstacle", 30, 30, 30, 1, 2, 100, sparse=False, env_id="latco/Obstacle-v0"),
    "reach": TaskSpec("reach", 30, 30, 150, 1, 4, 20, sparse=True, env_id="latco/Reach-v0"),
    "push": TaskSpec("push", 40, 20, 120, 1, 4, 20, sparse=True, env_id="latco/Push-v0"),
}
"""All tasks by name, in the paper's order."""


def task_spec(task: str) -> TaskSpec:
    """The `TaskSpec` of `task`; raises ValueError naming the valid tasks."""
    try:
        return TASKS[task]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}") from None
