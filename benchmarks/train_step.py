"""Where a quick world-model training step goes, and what each way of making it cheaper buys.

    python benchmarks/train_step.py [--profile quick] [--repeats 12] [--threads 1]
    python benchmarks/train_step.py --image-sizes 32 64     # the same model at 32 and 64 px

One training step = ELBO forward + backward + Adam on the profile's batch × length of random
images. First a profile of one step by part (encoder, the RSSM's sequential filter, decoder, loss,
backward, Adam). Then the candidates, timed side by side in one run, alternating step by step so
machine load hits them alike (median ms/step, ratio to the step as shipped):

- ``as shipped``: ``latco.model`` as it is;
- ``first layer by ConvTranspose2d (before)``: the decoder's first transposed convolution (of a
  1 x 1 input) through ``nn.ConvTranspose2d`` instead of one matmul (``Decoder.first_layer``);
- ``channels_last``: encoder and decoder convolutions in NHWC memory layout
  (``TrainConfig.channels_last``);
- ``decoder bf16``: the decoder under CPU autocast to bfloat16, the rest float32
  (``TrainConfig.decoder_bf16``); and the two together;
- ``compiled decoder``: ``torch.compile`` of the decoder (compile seconds reported apart);
- ``decode half``: ``TrainConfig.decode_fraction = 0.5`` (half the frames reconstructed).

Each variant computes the same loss up to rounding (bf16: to ~1e-2 relative); none of them
changes what the model is. The quick profile trains with one thread per job (two jobs share two
cores), hence ``--threads 1``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from latco.model import RSSM, elbo_loss
from latco.paper.profiles import PROFILES, world_model_config


def _compiled_decoder(model: RSSM) -> None:
    model.decoder.forward = torch.compile(model.decoder.forward)


def _col2im_first_layer(model: RSSM) -> None:
    """The decoder's first transposed convolution through ``nn.ConvTranspose2d`` (before 2026-12-06)
    instead of the matmul ``Decoder.first_layer`` computes it with."""
    decoder = model.decoder

    def first_layer(x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, decoder.width, 1, 1)
        if decoder.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return decoder.net[0](x)

    decoder.first_layer = first_layer


VARIANTS: dict[str, dict[str, object]] = {
    "as shipped": {},
    "first layer by ConvTranspose2d (before)": {"patch": _col2im_first_layer},
    "channels_last": {"channels_last": True},
    "channels_last, first layer by ConvTranspose2d (before)": {"channels_last": True,
                                                               "patch": _col2im_first_layer},
    "decoder bf16": {"decoder_bf16": True},
    "channels_last + decoder bf16": {"channels_last": True, "decoder_bf16": True},
    "compiled decoder": {"patch": _compiled_decoder},
    "decode half": {"decode_fraction": 0.5},
}
"""Each variant: ``TrainConfig`` options (``channels_last``, ``decoder_bf16``, ``decode_fraction``) as
the training loop applies them, or a ``patch`` of the model."""


def breakdown(profile_name: str, repeats: int) -> list[dict[str, object]]:
    """Milliseconds of each part of one step (as shipped), timed part by part."""
    profile = PROFILES[profile_name]
    cfg = world_model_config(profile, action_size=4)
    B, L, S = profile.train.batch, profile.train.length, cfg.image_size
    torch.manual_seed(0)
    model = RSSM(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=profile.train.lr)
    images = torch.randint(0, 256, (B, L, S, S, 3), dtype=torch.uint8)
    actions = torch.rand(B, L - 1, 4) * 2 - 1
    parts: dict[str, list[float]] = {}

    def timed(name: str, fn: Callable[[], object]) -> object:
        tick = time.perf_counter()
        out = fn()
        parts.setdefault(name, []).append(time.perf_counter() - tick)
        return out

    for _ in range(repeats + 2):
        x = model.preprocess(images)
        embed = timed("encoder", lambda x=x: model.encoder(x))
        h = torch.zeros(B, cfg.deter)
        s = torch.zeros(B, cfg.stoch)

        def filter_loop(embed=embed, s=s, h=h) -> torch.Tensor:
            feats, a = [], torch.zeros(B, 4)
            for t in range(L):
                if t:
                    a = actions[:, t - 1]
                h = model._transition(s, h, a)
                model.prior(h)
                mean, std = model.posterior(h, embed[:, t])
                s = mean + std * torch.randn_like(std)
                feats.append(torch.cat([s, h], -1))
            return torch.stack(feats, 1)

        feature = timed(f"RSSM filter ({L} sequential steps)", filter_loop)
        recon = timed("decoder", lambda feature=feature: model.decode(feature))
        loss = timed("loss", lambda recon=recon, x=x: 0.5 * (recon - x).pow(2).sum((-3, -2, -1)).mean())
        optimizer.zero_grad(set_to_none=True)
        timed("backward", loss.backward)
        timed("Adam", optimizer.step)
    rows = [{"part": k, "ms": float(np.median(v[2:]) * 1e3)} for k, v in parts.items()]
    total = sum(r["ms"] for r in rows)
    return [{**r, "share": r["ms"] / total} for r in rows]


def _alternate(steps: dict, repeats: int) -> dict:
    """Seconds of each step function over ``repeats`` rounds, one call of each per round (after a
    round of warm-up), so machine load hits every variant alike."""
    times: dict = {key: [] for key in steps}
    for i in range(repeats + 1):
        for key, step in steps.items():
            tick = time.perf_counter()
            step()
            if i:
                times[key].append(time.perf_counter() - tick)
    return times


def compare(profile_name: str, repeats: int) -> list[dict[str, object]]:
    """Median ms per full training step of each variant, alternating variants step by step."""
    profile = PROFILES[profile_name]
    cfg = world_model_config(profile, action_size=4)
    B, L, S = profile.train.batch, profile.train.length, cfg.image_size
    images = torch.randint(0, 256, (B, L, S, S, 3), dtype=torch.uint8)
    actions = torch.rand(B, L - 1, 4) * 2 - 1
    rewards = torch.randn(B, L - 1)
    steps, setup_s, first_loss = {}, {}, {}
    for name, options in VARIANTS.items():
        torch.manual_seed(0)
        model = RSSM(cfg)
        tick = time.perf_counter()
        if options.get("channels_last"):
            model.use_channels_last()  # before the optimizer, as train_world_model does
        if "patch" in options:
            options["patch"](model)
        optimizer = torch.optim.Adam(model.parameters(), lr=profile.train.lr)
        generator = torch.Generator().manual_seed(0)
        fraction, bf16 = float(options.get("decode_fraction", 1.0)), bool(options.get("decoder_bf16"))

        def step(model=model, optimizer=optimizer, generator=generator, fraction=fraction,
                 bf16=bf16) -> float:
            loss, _ = elbo_loss(model, images, actions, rewards, generator, decode_fraction=fraction,
                                decoder_bf16=bf16)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return loss.item()

        first_loss[name] = step()  # compiles, where a variant compiles
        setup_s[name] = time.perf_counter() - tick
        steps[name] = step
    times = _alternate(steps, repeats)
    base = float(np.median(times["as shipped"]))
    rows = []
    for name, t in times.items():
        median = float(np.median(t))
        rows.append({"variant": name, "ms/step": median * 1e3, "vs as shipped": median / base,
                     "first step (s, incl. compile)": setup_s[name], "first loss": first_loss[name],
                     "minutes per 12 000 steps": median * 12_000 / 60})
    return rows


def compare_sizes(profile_name: str, repeats: int, sizes: tuple[int, ...]) -> list[dict[str, object]]:
    """Median ms per training step of the profile's model at each image size (the encoder and decoder
    gain a layer per doubling, the RSSM is unchanged), alternating step by step as ``compare``."""
    profile = PROFILES[profile_name]
    B, L = profile.train.batch, profile.train.length
    steps, params = {}, {}
    for size in sizes:
        cfg = world_model_config(profile.with_overrides({"world_model.image_size": size}), action_size=2)
        torch.manual_seed(0)
        model = RSSM(cfg)
        optimizer = torch.optim.Adam(model.parameters(), lr=profile.train.lr)
        generator = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (B, L, size, size, 3), dtype=torch.uint8)
        actions, rewards = torch.rand(B, L - 1, 2) * 2 - 1, torch.randn(B, L - 1)

        def step(model=model, optimizer=optimizer, generator=generator, images=images, actions=actions,
                 rewards=rewards) -> None:
            loss, _ = elbo_loss(model, images, actions, rewards, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        step()
        steps[size], params[size] = step, sum(p.numel() for p in model.parameters())
    times = _alternate(steps, repeats)
    base = float(np.median(times[sizes[0]]))
    return [{"image size": size, "parameters": params[size], "ms/step": float(np.median(t)) * 1e3,
             f"vs {sizes[0]} px": float(np.median(t)) / base,
             "minutes per 6000 steps": float(np.median(t)) * 6000 / 60} for size, t in times.items()]


def _print(rows: list[dict[str, object]]) -> None:
    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--image-sizes", type=int, nargs="+", default=None,
                        help="instead: compare the model's training step at these image sizes (e.g. 32 64)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"profile {args.profile}, torch {torch.__version__}, {args.threads} thread(s)\n")
    if args.image_sizes:
        _print(compare_sizes(args.profile, args.repeats, tuple(args.image_sizes)))
        return
    print("One step by part (as shipped, forward parts without autograd bookkeeping differences):\n")
    _print(breakdown(args.profile, args.repeats))
    print("\nCandidates, side by side:\n")
    _print(compare(args.profile, args.repeats))


if __name__ == "__main__":
    main()
