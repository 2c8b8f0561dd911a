"""Training the world model by the ELBO (Algorithm 1, lines 11–13), resumable after a crash.

A run directory holds ``checkpoint.pt`` (model, optimizer, step, RNG states; written atomically)
and ``metrics.csv`` (one row per logged step). Calling ``train_world_model`` again on the same
directory continues from the last checkpoint and draws the same batches it would have drawn.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm  # text bars: notebooks run headless through papermill (no ipywidgets)

from latco import storage
from latco.model import RSSM, WorldModelConfig, elbo_loss
from latco.replay import Replay

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.csv"


@dataclass(frozen=True)
class TrainConfig:
    """Optimization settings. Defaults are the authors' released settings."""

    steps: int = 100_000
    """Total gradient steps (a resumed run stops at the same total)."""
    batch: int = 50
    """Sequences per batch."""
    length: int = 50
    """Images per sequence."""
    lr: float = 6e-4
    """Adam learning rate."""
    adam_eps: float = 1e-4
    """Adam epsilon (Dreamer's setting)."""
    grad_clip: float = 100.0
    """Gradient norm clipping threshold."""
    checkpoint_every: int = 500
    """Write a checkpoint every this many steps (and at the end)."""
    log_every: int = 50
    """Append a metrics row every this many steps."""
    seed: int = 0
    """Seeds parameter init, the replay sampler and the posterior noise."""
    reward_scale: float = 1.0
    """Weight of the reward log-likelihood in the loss (1: the ELBO, the authors' setting)."""
    balance: float = 0.0
    """Fraction of each batch drawn from windows that contain a positive reward (``Replay``'s
    rule; the authors' ``dataset_balance``). 0: uniform windows, the authors' default."""
    decode_fraction: float = 1.0
    """Fraction of each batch's frames the decoder reconstructs per step, a random subset
    (``elbo_loss``): an unbiased estimate of the image term at a fraction of the decoder's cost.
    1: every frame, the authors' setting."""
    decoder_bf16: bool = False
    """Decoder under bfloat16 autocast during training (``elbo_loss``); the saved weights and every
    use after training stay float32. False: float32 throughout, the authors' setting."""
    channels_last: bool = False
    """Train with the convolutions in NHWC memory layout (``RSSM.use_channels_last``): the same
    model up to rounding, a cheaper step on CPUs."""
    ema: float = 0.0
    """Decay of an exponential moving average of the weights, which is then the model planners use
    (``load_model``); the last weights are kept beside it. 0: no average, the authors' setting."""


def default_device() -> torch.device:
    """The GPU when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint, naming the file and the fix if it is missing or unreadable."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no checkpoint at {path}; train a model first (latco.train.train_world_model)"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise RuntimeError(
            f"checkpoint {path} is unreadable ({type(err).__name__}: {err}); delete it to retrain"
        ) from err


def load_model(run_dir: str | os.PathLike, device: str | torch.device | None = None,
               average: bool = True) -> RSSM:
    """The trained world model of a run directory, in eval mode: its weight average when training
    kept one (``TrainConfig.ema``) and ``average`` is true, else its last weights."""
    state = load_checkpoint(Path(run_dir) / CHECKPOINT, map_location=device or "cpu")
    model = RSSM(WorldModelConfig(**state["model_config"])).to(device or "cpu")
    averaged = state.get("average")
    model.load_state_dict(averaged["state"] if average and averaged is not None else state["model"])
    model.trained_steps = int(state["step"])
    return model.eval()


class WeightAverage:
    """Exponential moving average of a model's weights (Polyak averaging).

    The decay is ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so early averages are not
    dominated by the random initialization. Why: along one training run the model's response to
    actions outside the data swings from checkpoint to checkpoint (README, Obstacle); an average
    over the last ~1 / (1 - decay) steps does not depend on where the run happens to stop.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"weight-average decay must be in (0, 1), got {decay}")
        self.decay, self.updates = decay, 0
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Move the average towards ``model``'s current weights."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for key, value in model.state_dict().items():
            if value.dtype.is_floating_point:
                self.state[key].lerp_(value.detach(), 1.0 - decay)
            else:
                self.state[key].copy_(value)

    def state_dict(self) -> dict:
        return {"state": self.state, "updates": self.updates}

    def load_state_dict(self, saved: dict) -> None:
        self.state = {k: v.clone() for k, v in saved["state"].items()}
        self.updates = saved["updates"]


def _to_torch(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v, device=device) for k, v in batch.items()}


def train_world_model(
    model_config: WorldModelConfig,
    replay: Replay,
    run_dir: str | os.PathLike,
    cfg: TrainConfig = TrainConfig(),
    device: str | torch.device | None = None,
    progress: bool = True,
) -> RSSM:
    """Train (or resume training) a world model on replay windows; returns the trained model.

    Raises ``FloatingPointError`` naming the step if the loss becomes NaN/Inf; the last good
    checkpoint is kept. A checkpoint with more steps than ``cfg.steps`` is an error (no silent
    early stop). The returned model's ``trained_steps`` is the step its checkpoint holds.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device) if device is not None else default_device()
    torch.manual_seed(cfg.seed)
    model = RSSM(model_config).to(device)
    if cfg.channels_last:
        model.use_channels_last()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    replay.rng = np.random.default_rng(cfg.seed)
    replay.balance = cfg.balance
    average = WeightAverage(model, cfg.ema) if cfg.ema > 0 else None
    step = 0
    ckpt_path = run_dir / CHECKPOINT
    if ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location=device)
        if state["model_config"] != asdict(model_config):
            raise ValueError(
                f"{ckpt_path} was trained with a different model config; use a new run directory"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"].cpu())
        replay.load_state_dict(state["replay"])
        step = state["step"]
        if step > cfg.steps:
            raise ValueError(f"{ckpt_path} has trained {step} steps, more than the {cfg.steps} asked for: a "
                             "model cannot be untrained; ask for more steps or use a new run directory")
        if average is not None:
            if state.get("average") is None:
                raise ValueError(f"{ckpt_path} was trained without a weight average (TrainConfig.ema); "
                                 "use a new run directory")
            average.load_state_dict(state["average"])
    _truncate_metrics(run_dir / METRICS, step)

    def save() -> None:
        _atomic_save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "replay": replay.state_dict(),
                "step": step,
                "model_config": asdict(model_config),
                "train_config": asdict(cfg),
                "average": average.state_dict() if average is not None else None,
            },
            ckpt_path,
        )

    model.train()
    bar = tqdm(total=cfg.steps, initial=step, desc="world model", disable=not progress)
    tick = time.perf_counter()
    while step < cfg.steps:
        batch = _to_torch(replay.sample(cfg.batch), device)
        loss, metrics = elbo_loss(model, batch["images"], batch["actions"], batch["rewards"], generator,
                                  cfg.reward_scale, cfg.decode_fraction, cfg.decoder_bf16)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"world-model loss is {loss.item()} at step {step + 1} ({metrics}); the last good "
                f"checkpoint (step {step - step % cfg.checkpoint_every}) is kept in {ckpt_path}. "
                "Lower the learning rate or check the data."
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        if average is not None:
            average.update(model)
        step += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps:
            now = time.perf_counter()
            metrics.update(step=step, grad_norm=grad_norm.item(), steps_per_s=cfg.log_every / (now - tick))
            tick = now
            _append_metrics(run_dir / METRICS, metrics)
            bar.set_postfix(loss=f"{metrics['loss']:.1f}")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save()
    bar.close()
    if average is not None:
        model.load_state_dict(average.state)
    model.trained_steps = step  # what the checkpoint holds (``trained.json`` states it)
    return model.eval()


_METRIC_FIELDS = ["step", "loss", "image_nll", "reward_nll", "kl", "grad_norm", "steps_per_s"]


def _append_metrics(path: Path, row: dict[str, float]) -> None:
    storage.append_csv_row(path, _METRIC_FIELDS, row)


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop rows logged after the checkpoint we resume from, so no step appears twice."""
    if not path.exists():
        return
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=_METRIC_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
