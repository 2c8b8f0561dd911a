"""The latent world model: a PlaNet-style recurrent state-space model (RSSM) trained from images.

Paper §3.2 and §4 ("Latent state models"), Eq. 4. The latent feature is z = [s, h]: a Gaussian
stochastic state s (``stoch``) and the deterministic GRU state h (``deter``).

- prior      p(s' | h'),        h' = GRU(h, elu(W [s, a]))        (``predict_mean`` uses its mean)
- posterior  q(s' | h', e'),    e' = encoder(o')
- decoder    p(o | z) = N(decoder(z), 1)                          (unit-variance Gaussian)
- reward     p(r | z) = N(reward(z), 1)                           (MLP)

The planners see this model only through the ``LatentModel`` protocol of
``latco.planners.base``: ``feature_size``, ``action_size``, ``predict_mean(z, a)``, ``reward(z)``,
plus the analytic ``predict_mean_jacobian(z, a)`` which LatCo uses when present.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class WorldModelConfig:
    """Sizes of the world model. Defaults are the authors' released settings."""

    action_size: int = 4
    """Dimension of the action vector (2 for Obstacle, 4 for the Sawyer tasks)."""
    image_size: int = 64
    """Side of the square RGB observations; 32 or 64 (the conv stacks are built for these)."""
    depth: int = 32
    """Channel multiplier of the conv encoder and decoder (cnn depth)."""
    stoch: int = 30
    """Size of the stochastic state s."""
    deter: int = 200
    """Size of the deterministic GRU state h."""
    hidden: int = 200
    """Width of the dense layers inside the transition (img1, img2, obs1)."""
    reward_hidden: int = 400
    """Width of the reward MLP."""
    reward_layers: int = 2
    """Number of hidden layers of the reward MLP."""
    min_std: float = 0.1
    """std = softplus(raw) + min_std for prior and posterior."""
    free_nats: float = 3.0
    """The KL term is clipped from below at this value (averaged over batch and time)."""
    kl_balance: float | None = None
    """None: the ELBO's KL(q || p), whose gradient moves the posterior q and the prior p alike (the
    paper). A number α in [0, 1] (beyond the paper; DreamerV2's KL balancing, α = 0.8 there): the
    same value, but the gradient reaches the prior with weight α and the posterior with 1 − α, so
    the prior learns to predict the posterior more than the posterior is pulled toward it. Each
    part is clipped at ``free_nats`` on its own. The prior is what planners imagine with."""

    def __post_init__(self) -> None:
        if self.image_size not in (32, 64):
            raise ValueError(f"image_size must be 32 or 64, got {self.image_size}")
        if self.kl_balance is not None and not 0.0 <= self.kl_balance <= 1.0:
            raise ValueError(f"kl_balance must be None or in [0, 1], got {self.kl_balance}")

    @property
    def feature_size(self) -> int:
        return self.stoch + self.deter


def _conv_layers(image_size: int) -> int:
    """Stride-2 kernel-4 convolutions that bring the image to 2×2 (4 for 64 px, 3 for 32 px)."""
    return int(math.log2(image_size)) - 2


class Encoder(nn.Module):
    """Conv encoder: (..., 3, S, S) in [-0.5, 0.5] -> (..., embed_size). Kernel 4, stride 2, ReLU."""

    def __init__(self, cfg: WorldModelConfig) -> None:
        super().__init__()
        layers, channels = [], 3
        for i in range(_conv_layers(cfg.image_size)):
            layers += [nn.Conv2d(channels, cfg.depth * 2**i, 4, stride=2), nn.ReLU()]
            channels = cfg.depth * 2**i
        self.net = nn.Sequential(*layers)
        self.embed_size = channels * 2 * 2

    channels_last = False
    """Feed the convolutions NHWC tensors (``RSSM.use_channels_last``)."""

    def forward(self, images: Tensor) -> Tensor:
        lead = images.shape[:-3]
        x = images.reshape(-1, *images.shape[-3:])
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x).reshape(*lead, self.embed_size)


class Decoder(nn.Module):
    """Transposed-conv decoder: (..., F) -> mean image (..., 3, S, S), as in PlaNet."""

    def __init__(self, cfg: WorldModelConfig) -> None:
        super().__init__()
        n = _conv_layers(cfg.image_size)
        kernels = [5, 5, 6, 6] if n == 4 else [5, 6, 6]
        width = cfg.depth * 2 ** (n + 1)  # 32·depth at 64 px, as in the authors' code
        self.fc = nn.Linear(cfg.feature_size, width)
        layers, channels = [], width
        for i, k in enumerate(kernels):
            out = 3 if i == n - 1 else cfg.depth * 2 ** (n - 2 - i)
            layers.append(nn.ConvTranspose2d(channels, out, k, stride=2))
            if i < n - 1:
                layers.append(nn.ReLU())
            channels = out
        self.net = nn.Sequential(*layers)
        self.width = width

    channels_last = False
    """Feed the transposed convolutions NHWC tensors (``RSSM.use_channels_last``)."""

    def forward(self, z: Tensor) -> Tensor:
        lead = z.shape[:-1]
        x = self.first_layer(self.fc(z).reshape(-1, self.width))
        x = self.net[1:](x)
        return x.reshape(*lead, *x.shape[-3:])

    def first_layer(self, x: Tensor) -> Tensor:
        """The first transposed convolution, of a 1 x 1 input: (N, C) -> (N, out, k, k).

        On a 1 x 1 input it is one matmul with the kernel, the same numbers up to rounding;
        computed so because PyTorch's transposed convolution goes through its slow col2im path on
        CPUs (the decoder's forward + backward 0.8-0.9x, ``benchmarks/train_step.py``). With
        ``channels_last`` the product is laid out NHWC, as the next layer wants it.
        """
        conv = self.net[0]
        if not self.channels_last:
            x = x @ conv.weight.flatten(1)
            return x.unflatten(1, conv.weight.shape[1:]) + conv.bias[:, None, None]
        x = x @ conv.weight.permute(0, 2, 3, 1).flatten(1)
        x = x.unflatten(1, (*conv.weight.shape[2:], conv.weight.shape[1])) + conv.bias
        return x.permute(0, 3, 1, 2)


def _elu_grad(pre: Tensor) -> Tensor:
    """d elu(x)/dx = 1 for x > 0, exp(x) otherwise."""
    return torch.where(pre > 0, torch.ones_like(pre), torch.exp(pre.clamp(max=0)))


class RSSM(nn.Module):
    """The whole world model: encoder, recurrent transition, decoder and reward head.

    Shapes: images (..., S, S, 3) uint8 or (..., 3, S, S) float in [-0.5, 0.5];
    features z (..., F) with F = stoch + deter; actions (..., A).
    """

    def __init__(self, cfg: WorldModelConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or WorldModelConfig()
        self.cfg = cfg
        self.feature_size = cfg.feature_size
        self.action_size = cfg.action_size
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        # transition (names follow the authors' img1/img2/img3 and obs1/obs2 layers)
        self.img1 = nn.Linear(cfg.stoch + cfg.action_size, cfg.hidden)
        self.cell = nn.GRUCell(cfg.hidden, cfg.deter)
        self.img2 = nn.Linear(cfg.deter, cfg.hidden)
        self.img3 = nn.Linear(cfg.hidden, 2 * cfg.stoch)
        self.obs1 = nn.Linear(cfg.deter + self.encoder.embed_size, cfg.hidden)
        self.obs2 = nn.Linear(cfg.hidden, 2 * cfg.stoch)
        layers, width = [], cfg.feature_size
        for _ in range(cfg.reward_layers):
            layers += [nn.Linear(width, cfg.reward_hidden), nn.ELU()]
            width = cfg.reward_hidden
        layers.append(nn.Linear(width, 1))
        self.reward_head = nn.Sequential(*layers)

    # ------------------------------------------------------------------ the LatentModel protocol
    def split(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """z = [s, h] -> (s, h)."""
        return z[..., : self.cfg.stoch], z[..., self.cfg.stoch :]

    def _gaussian(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, raw = x.chunk(2, dim=-1)
        return mean, F.softplus(raw) + self.cfg.min_std

    def _transition(self, s: Tensor, h: Tensor, a: Tensor) -> Tensor:
        """h' = GRU(h, elu(img1([s, a])))."""
        x = F.elu(self.img1(torch.cat([s, a], -1)))
        lead = h.shape[:-1]
        h_next = self.cell(x.reshape(-1, x.shape[-1]), h.reshape(-1, h.shape[-1]))
        return h_next.reshape(*lead, -1)

    def prior(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """p(s | h): mean and std, (..., stoch) each."""
        return self._gaussian(self.img3(F.elu(self.img2(h))))

    def prior_mean(self, h: Tensor) -> Tensor:
        """E[s | h] alone, (..., stoch): the mean rows of img3 only, no std (the planners' hot path).

        The mean half of ``prior(h)`` (the same rows of the same matmul; bitwise equal on CPU as
        measured); skipping the std rows and the softplus saves about 8 % of ``predict_mean`` on the
        paper-sized model at 1000-10 000 samples.
        """
        stoch = self.cfg.stoch
        return F.linear(F.elu(self.img2(h)), self.img3.weight[:stoch], self.img3.bias[:stoch])

    def posterior(self, h: Tensor, embed: Tensor) -> tuple[Tensor, Tensor]:
        """q(s | h, e): mean and std, (..., stoch) each."""
        return self._gaussian(self.obs2(F.elu(self.obs1(torch.cat([h, embed], -1)))))

    def predict_mean(self, z: Tensor, a: Tensor) -> Tensor:
        """μ(z, a): the feature of the one-step prior mean, [E s', h']. (..., F), (..., A) -> (..., F)."""
        s, h = self.split(z)
        h_next = self._transition(s, h, a)
        return torch.cat([self.prior_mean(h_next), h_next], -1)

    def predict_mean_jacobian(self, z: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
        """Analytic Jacobians of ``predict_mean``: (∂μ/∂z (..., F, F), ∂μ/∂a (..., F, A)).

        Chain rule through the GRU cell (torch's formulation, reset applied after the matmul):
        r = σ(W_ir x + b_ir + W_hr h + b_hr), u = σ(W_iz x + … + W_hz h + …),
        n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 − u) ⊙ n + u ⊙ h.
        Each ∂h'/∂(x, h) is a sum of row-scaled weight matrices, so no per-sample matmul is
        needed there; the only products are with the small input and prior-head layers.
        About 6× faster than ``torch.func.jacrev`` on the paper-sized model (2-core CPU).
        """
        cfg = self.cfg
        s, h = self.split(z)
        lead = z.shape[:-1]
        s, h, a = s.reshape(-1, cfg.stoch), h.reshape(-1, cfg.deter), a.reshape(-1, cfg.action_size)
        pre_x = self.img1(torch.cat([s, a], -1))
        x = F.elu(pre_x)
        gi = F.linear(x, self.cell.weight_ih, self.cell.bias_ih)
        gh = F.linear(h, self.cell.weight_hh, self.cell.bias_hh)
        gi_r, gi_u, gi_n = gi.chunk(3, -1)
        gh_r, gh_u, gh_n = gh.chunk(3, -1)
        r = torch.sigmoid(gi_r + gh_r)
        u = torch.sigmoid(gi_u + gh_u)
        n = torch.tanh(gi_n + r * gh_n)
        h_next = (1 - u) * n + u * h
        # coefficients of the row-scaled weight blocks: ∂h'/∂(pre-activations of r, u, n)
        c_n = (1 - u) * (1 - n * n)           # through n
        c_r = c_n * gh_n * r * (1 - r)         # through r (inside n)
        c_u = (h - n) * u * (1 - u)            # through u
        w_ir, w_iu, w_in = self.cell.weight_ih.chunk(3, 0)
        w_hr, w_hu, w_hn = self.cell.weight_hh.chunk(3, 0)
        # ∂h'/∂h = diag(c_n ⊙ r) W_hn + diag(c_r) W_hr + diag(c_u) W_hu + diag(u)
        dh_dh = (c_n * r)[:, :, None] * w_hn + c_r[:, :, None] * w_hr + c_u[:, :, None] * w_hu
        dh_dh.diagonal(dim1=-2, dim2=-1).add_(u)
        # ∂h'/∂x, then through x = elu(img1([s, a]))
        dh_dx = c_n[:, :, None] * w_in + c_r[:, :, None] * w_ir + c_u[:, :, None] * w_iu
        dx_dsa = _elu_grad(pre_x)[:, :, None] * self.img1.weight  # (B, hidden, stoch + A)
        dh_dsa = dh_dx @ dx_dsa                                     # (B, deter, stoch + A)
        # prior mean head: E s' = img3(elu(img2(h')))
        pre_p = self.img2(h_next)
        w3_mean = self.img3.weight[: cfg.stoch]
        ds_dh = (w3_mean * _elu_grad(pre_p)[:, None, :]) @ self.img2.weight  # (B, stoch, deter)
        dh_dz = torch.cat([dh_dsa[:, :, : cfg.stoch], dh_dh], -1)             # (B, deter, F)
        dmu_dz = torch.cat([ds_dh @ dh_dz, dh_dz], -2)                        # (B, F, F)
        dh_da = dh_dsa[:, :, cfg.stoch :]
        dmu_da = torch.cat([ds_dh @ dh_da, dh_da], -2)                        # (B, F, A)
        F_, A = cfg.feature_size, cfg.action_size
        return dmu_dz.reshape(*lead, F_, F_), dmu_da.reshape(*lead, F_, A)

    def reward(self, z: Tensor) -> Tensor:
        """Predicted reward r(z): (..., F) -> (...)."""
        return self.reward_head(z).squeeze(-1)

    # ------------------------------------------------------------------ images and filtering
    @property
    def dtype(self) -> torch.dtype:
        return self.img1.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.img1.weight.device

    def _noise(self, shape: torch.Size, generator: torch.Generator | None) -> Tensor:
        return torch.randn(shape, generator=generator, dtype=self.dtype, device=self.device)

    def preprocess(self, images: Tensor) -> Tensor:
        """uint8 (..., S, S, 3) -> float (..., 3, S, S) in [-0.5, 0.5], as the authors scale images."""
        if images.dtype != torch.uint8:
            raise TypeError(f"expected uint8 images (..., S, S, 3), got dtype {images.dtype}")
        S = self.cfg.image_size
        if images.shape[-3:] != (S, S, 3):
            raise ValueError(f"expected images of shape (..., {S}, {S}, 3), got {tuple(images.shape)}")
        return images.to(self.device).movedim(-1, -3).to(self.dtype) / 255.0 - 0.5

    def decode(self, z: Tensor) -> Tensor:
        """Mean image of p(o | z): (..., F) -> float (..., 3, S, S) in about [-0.5, 0.5]."""
        return self.decoder(z)

    def use_channels_last(self, enabled: bool = True) -> RSSM:
        """Run the encoder's and decoder's convolutions in NHWC memory layout (same numbers up to
        rounding; faster on CPUs, ``benchmarks/train_step.py``). Returns the model."""
        fmt = torch.channels_last if enabled else torch.contiguous_format
        for part in (self.encoder, self.decoder):
            part.net.to(memory_format=fmt)
            part.channels_last = enabled
        return self

    def decode_images(self, z: Tensor) -> Tensor:
        """Decoded mean images as uint8 (..., S, S, 3), for figures and videos."""
        x = (self.decode(z) + 0.5).clamp(0, 1) * 255
        return x.round().to(torch.uint8).movedim(-3, -1)

    def initial_state(self, batch: int, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
        """Zero (s, h) before the first observation."""
        kw = dict(device=device or self.device, dtype=self.dtype)
        return torch.zeros(batch, self.cfg.stoch, **kw), torch.zeros(batch, self.cfg.deter, **kw)

    def observe(
        self,
        images: Tensor,
        actions: Tensor,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Filter a batch of sequences: images (B, T+1, S, S, 3) uint8, actions (B, T, A).

        Step 0 starts from the zero state with a zero action; action t leads from image t to t+1.
        Returns posterior and prior statistics and features, each (B, T+1, ·). With
        ``sample=False`` the posterior mean is used as the state (deterministic filtering for
        planning); training uses ``sample=True`` (reparameterized).
        """
        B, T1 = images.shape[:2]
        if actions.shape[:2] != (B, T1 - 1) or actions.shape[-1] != self.action_size:
            raise ValueError(
                f"actions must have shape ({B}, {T1 - 1}, {self.action_size}) for images of shape "
                f"{tuple(images.shape)}; got {tuple(actions.shape)}"
            )
        embed = self.encoder(self.preprocess(images))
        actions = actions.to(self.device, self.dtype)
        s, h = self.initial_state(B)
        a_prev = torch.zeros(B, self.action_size, device=self.device, dtype=self.dtype)
        keys = ("post_mean", "post_std", "prior_mean", "prior_std", "feature")
        out: dict[str, list[Tensor]] = {k: [] for k in keys}
        for t in range(T1):
            if t > 0:
                a_prev = actions[:, t - 1]
            h = self._transition(s, h, a_prev)
            prior_mean, prior_std = self.prior(h)
            post_mean, post_std = self.posterior(h, embed[:, t])
            if sample:
                noise = self._noise(post_mean.shape, generator)
                s = post_mean + post_std * noise
            else:
                s = post_mean
            values = (post_mean, post_std, prior_mean, prior_std, torch.cat([s, h], -1))
            for k, v in zip(keys, values, strict=True):
                out[k].append(v)
        return {k: torch.stack(v, 1) for k, v in out.items()}

    def initial_feature(self, image: Tensor) -> Tensor:
        """Filtered feature of a single first observation: (..., S, S, 3) uint8 -> (..., F)."""
        lead = image.shape[:-3]
        flat = image.reshape(-1, 1, *image.shape[-3:])
        actions = torch.zeros(flat.shape[0], 0, self.action_size, device=self.device, dtype=self.dtype)
        return self.observe(flat, actions)["feature"][:, 0].reshape(*lead, self.feature_size)

    def imagine(
        self,
        z0: Tensor,
        actions: Tensor,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Roll the prior forward from z0 (..., F) under actions (..., T, A) -> features (..., T+1, F).

        ``sample=False`` follows the prior mean (the planners' deterministic rollouts).
        """
        zs = [z0]
        for t in range(actions.shape[-2]):
            if sample:
                s, h = self.split(zs[-1])
                h_next = self._transition(s, h, actions[..., t, :])
                mean, std = self.prior(h_next)
                noise = self._noise(mean.shape, generator)
                zs.append(torch.cat([mean + std * noise, h_next], -1))
            else:
                zs.append(self.predict_mean(zs[-1], actions[..., t, :]))
        return torch.stack(zs, -2)

    def config_dict(self) -> dict:
        """The config as a plain dict (stored in checkpoints)."""
        return asdict(self.cfg)


def gaussian_kl(mean_q: Tensor, std_q: Tensor, mean_p: Tensor, std_p: Tensor) -> Tensor:
    """KL(N(mean_q, std_q²) || N(mean_p, std_p²)) summed over the last dim (diagonal Gaussians)."""
    var_ratio = (std_q / std_p) ** 2
    t = ((mean_q - mean_p) / std_p) ** 2
    return 0.5 * (var_ratio + t - 1 - torch.log(var_ratio)).sum(-1)


def elbo_loss(
    model: RSSM,
    images: Tensor,
    actions: Tensor,
    rewards: Tensor,
    generator: torch.Generator | None = None,
    reward_scale: float = 1.0,
    decode_fraction: float = 1.0,
    decoder_bf16: bool = False,
) -> tuple[Tensor, dict[str, float]]:
    """Negative ELBO of paper Eq. 4 on a batch of sequences (to minimize).

    images (B, T+1, S, S, 3) uint8, actions (B, T, A), rewards (B, T) with rewards[:, t] the reward
    received after actions[:, t], i.e. predicted from the feature of image t+1.
    loss = E[−ln p(o|z)] + E[−ln p(r|z)] + max(KL(q || p), free_nats), with unit-variance Gaussian
    image and reward likelihoods (additive constants dropped), sums over pixels and latent dims,
    means over batch and time; free nats clip the mean KL as in the authors' code.
    ``reward_scale`` weights the reward term (1: the ELBO; the image term sums 3·S² pixels, the
    reward term one number, so the latent is shaped almost only by the images).
    ``decode_fraction`` < 1 decodes only that fraction of the B·(T+1) frames, a uniformly random
    subset drawn with ``generator``: the image term is then the mean over the subset, an unbiased
    estimate of the full mean at a fraction of the decoder's cost (1: every frame, the ELBO as is).
    ``decoder_bf16`` runs the decoder under bfloat16 autocast (its output, the loss and every other
    part stay float32): cheaper convolutions, image means rounded to bf16's 8-bit mantissa.
    """
    if not 0.0 < decode_fraction <= 1.0:
        raise ValueError(f"decode_fraction must be in (0, 1], got {decode_fraction}")
    out = model.observe(images, actions, sample=True, generator=generator)
    feature = out["feature"]
    if decode_fraction < 1.0:
        frames = feature.shape[0] * feature.shape[1]
        keep = max(1, round(decode_fraction * frames))
        pick = torch.randperm(frames, generator=generator, device=feature.device)[:keep]
        feature = feature.reshape(frames, -1)[pick]
        images = images.reshape(frames, *images.shape[2:])[pick.to(images.device)]
    target = model.preprocess(images)
    if decoder_bf16:
        with torch.autocast(feature.device.type, dtype=torch.bfloat16):
            mean = model.decode(feature)
        mean = mean.float()
    else:
        mean = model.decode(feature)
    image_nll = 0.5 * (mean - target).pow(2).sum((-3, -2, -1)).mean()
    reward_pred = model.reward(out["feature"][:, 1:])
    reward_nll = 0.5 * (reward_pred - rewards.to(reward_pred)).pow(2).mean()
    post, prior = (out["post_mean"], out["post_std"]), (out["prior_mean"], out["prior_std"])
    kl = gaussian_kl(*post, *prior).mean()
    alpha = model.cfg.kl_balance
    if alpha is None:
        kl_clipped = torch.clamp(kl, min=model.cfg.free_nats)
    else:  # the same value; the gradient split α to the prior, 1 − α to the posterior
        to_prior = gaussian_kl(*(x.detach() for x in post), *prior).mean()
        to_post = gaussian_kl(*post, *(x.detach() for x in prior)).mean()
        kl_clipped = (alpha * torch.clamp(to_prior, min=model.cfg.free_nats)
                      + (1 - alpha) * torch.clamp(to_post, min=model.cfg.free_nats))
    loss = image_nll + reward_scale * reward_nll + kl_clipped
    metrics = {
        "loss": loss.item(),
        "image_nll": image_nll.item(),
        "reward_nll": reward_nll.item(),
        "kl": kl.item(),
    }
    return loss, metrics
