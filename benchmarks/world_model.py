"""Milliseconds per world-model training step (forward + backward + Adam) for each profile.

Usage: python benchmarks/world_model.py [--profiles smoke quick paper] [--repeats 10]
                                        [--decode-fractions 1 0.5 0.25]
Random images and actions of the profile's batch × length; the median of ``repeats`` steps after
two warm-up steps, each decode fraction (``TrainConfig.decode_fraction``: the decoder reconstructs
that fraction of the frames) timed side by side in one run, alternating step by step so machine
load hits them alike. The paper profile at 50 × 50 and 64 px takes seconds per step on a CPU.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from latco.model import RSSM, elbo_loss
from latco.paper.profiles import PROFILES, world_model_config
from latco.train import default_device


def time_train_step(profile_name: str, repeats: int, device: torch.device,
                    fractions: tuple[float, ...] = (1.0,)) -> list[dict[str, float]]:
    profile = PROFILES[profile_name]
    cfg = world_model_config(profile, action_size=4)
    B, L, S = profile.train.batch, profile.train.length, cfg.image_size
    torch.manual_seed(0)
    model = RSSM(cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=profile.train.lr, eps=profile.train.adam_eps)
    images = torch.randint(0, 256, (B, L, S, S, 3), dtype=torch.uint8, device=device)
    actions = torch.rand(B, L - 1, 4, device=device) * 2 - 1
    rewards = torch.randn(B, L - 1, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    times: dict[float, list[float]] = {f: [] for f in fractions}
    for i in range(repeats + 2):
        for fraction in fractions:
            if device.type == "cuda":
                torch.cuda.synchronize()
            tick = time.perf_counter()
            loss, _ = elbo_loss(model, images, actions, rewards, generator, decode_fraction=fraction)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), profile.train.grad_clip)
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= 2:
                times[fraction].append(time.perf_counter() - tick)
    rows = []
    for fraction in fractions:
        ms = float(np.median(times[fraction]) * 1e3)
        rows.append({
            "profile": profile_name,
            "image": S,
            "batch x length": f"{B} x {L}",
            "decode fraction": fraction,
            "params (M)": sum(p.numel() for p in model.parameters()) / 1e6,
            "ms/step": ms,
            "vs all frames": ms / float(np.median(times[fractions[0]]) * 1e3),
            "steps": profile.train.steps,
            "minutes for the profile's steps": ms * profile.train.steps / 6e4,
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["smoke", "quick", "paper"])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--decode-fractions", type=float, nargs="+", default=[1.0],
                        help="fractions of the frames the decoder reconstructs, timed side by side")
    args = parser.parse_args()
    device = default_device()
    print(f"device: {device}, torch threads: {torch.get_num_threads()}")
    rows = []
    for name in args.profiles:
        repeats = args.repeats if name != "paper" or device.type == "cuda" else 2
        rows += time_train_step(name, repeats, device, tuple(args.decode_fractions))
    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
