"""Does a constant shift of the reward change the plan? LatCo's two reward references, iCEM and GD.

    python studies/reward_shift.py

On three small models whose dynamics are the truth (a linear point mass, a pendulum, a random
tanh-MLP), every planner plans with reward r + c for c in (0, +10, −10) at its default settings;
the table gives the true return of the planned actions (rolled out under the unshifted r) and,
as the reference, the best of several L-BFGS-B solves over the actions. LatCo's paper residual
softplus(−r) (``reward_reference="zero"``) saturates for large rewards; ``"best"`` subtracts the
running best reward of the plan's latents inside the softplus and plans the same for every c.
"""

from __future__ import annotations

import warnings

import pandas as pd
import torch

from latco.analytic import Pendulum, PointMass, ShiftedReward, negative_return, reference_optimum
from latco.planners import make_planner
from latco.planners.evaluate import rollout_return

SHIFTS = (0.0, 10.0, -10.0)


class RandomMLP:
    """z' = z + 0.2·tanh(W_z z + W_a a + b), reward −‖z − goal‖² (fixed random weights, float64)."""

    feature_size, action_size = 4, 2

    def __init__(self, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.wz = 0.5 * torch.randn(4, 4, generator=g, dtype=torch.float64)
        self.wa = torch.randn(4, 2, generator=g, dtype=torch.float64)
        self.b = 0.1 * torch.randn(4, generator=g, dtype=torch.float64)
        self.goal = torch.tensor([1.0, -0.5, 0.5, 0.0], dtype=torch.float64)

    def predict_mean(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return z + 0.2 * torch.tanh(z @ self.wz.T + a @ self.wa.T + self.b)

    def reward(self, z: torch.Tensor) -> torch.Tensor:
        return -(z - self.goal).pow(2).sum(-1)


CASES = {  # name: (model, z0, horizon)
    "point mass, H = 15": (PointMass(goal=(3.0, 1.0)), torch.zeros(2, dtype=torch.float64), 15),
    "pendulum, H = 30": (Pendulum(), torch.zeros(2, dtype=torch.float64), 30),
    "random MLP dynamics, H = 15": (RandomMLP(), torch.zeros(4, dtype=torch.float64), 15),
}
PLANNERS = {"LatCo zero": ("latco", {"reward_reference": "zero"}),
            "LatCo best": ("latco", {"reward_reference": "best"}), "iCEM": ("icem", {}), "GD": ("gd", {})}


def main() -> pd.DataFrame:
    rows = []
    for case, (model, z0, horizon) in CASES.items():
        best = reference_optimum(model, z0, horizon, objective=negative_return)
        for c in SHIFTS:
            row = {"model": case, "shift c": c}
            for label, (name, options) in PLANNERS.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # "zero" warns when it saturates
                    actions = make_planner(name, **options).plan(ShiftedReward(model, c), z0, horizon).actions
                row[label] = float(rollout_return(model, z0, actions.double()))
            row["L-BFGS-B"] = -best.value
            rows.append(row)
    return pd.DataFrame(rows)


if __name__ == "__main__":
    print(main().round(2).to_markdown(index=False))
