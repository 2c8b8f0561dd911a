"""World model: shapes, the analytic Jacobian, the ELBO terms, training and resuming."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from latco.model import RSSM, WorldModelConfig, elbo_loss, gaussian_kl
from latco.replay import Replay
from latco.train import CHECKPOINT, METRICS, TrainConfig, load_checkpoint, load_model, train_world_model

TINY = WorldModelConfig(
    action_size=2, image_size=32, depth=4, stoch=4, deter=8, hidden=16, reward_hidden=16
)


def moving_square_episodes(n: int, T: int = 12, size: int = 32, seed: int = 0) -> list[dict]:
    """A white square moved by the actions on a black image; reward = −distance to the centre."""
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(n):
        pos = rng.uniform(4, size - 8, 2)
        actions = rng.uniform(-1, 1, (T, 2)).astype(np.float32)
        images = np.zeros((T + 1, size, size, 3), np.uint8)
        rewards = np.zeros(T, np.float32)
        for t in range(T + 1):
            x, y = np.clip(pos, 0, size - 4).astype(int)
            images[t, y : y + 4, x : x + 4] = 255
            if t < T:
                pos = np.clip(pos + 2 * actions[t], 0, size - 4)
                rewards[t] = -np.linalg.norm(pos - size / 2) / size
        episodes.append({"images": images, "actions": actions, "rewards": rewards})
    return episodes


def test_shapes_and_dtypes():
    torch.manual_seed(0)
    model = RSSM(TINY)
    F, A = model.feature_size, model.action_size
    images = torch.randint(0, 256, (3, 5, 32, 32, 3), dtype=torch.uint8)
    actions = torch.randn(3, 4, A)
    out = model.observe(images, actions)
    assert out["feature"].shape == (3, 5, F) and out["feature"].dtype == torch.float32
    assert out["post_mean"].shape == out["prior_std"].shape == (3, 5, TINY.stoch)
    assert model.predict_mean(out["feature"], torch.randn(3, 5, A)).shape == (3, 5, F)
    assert model.reward(out["feature"]).shape == (3, 5)
    assert model.decode(out["feature"]).shape == (3, 5, 3, 32, 32)
    decoded = model.decode_images(out["feature"])
    assert decoded.shape == (3, 5, 32, 32, 3) and decoded.dtype == torch.uint8
    assert model.initial_feature(images[:, 0]).shape == (3, F)
    assert model.imagine(out["feature"][:, 0], actions).shape == (3, 5, F)
    dz, da = model.predict_mean_jacobian(out["feature"], torch.randn(3, 5, A))
    assert dz.shape == (3, 5, F, F) and da.shape == (3, 5, F, A)


@pytest.mark.parametrize(
    "cfg", [TINY, WorldModelConfig(action_size=4, stoch=30, deter=200, hidden=200)], ids=["tiny", "paper"]
)
def test_analytic_jacobian_equals_jacrev(cfg):
    torch.manual_seed(1)
    model = RSSM(cfg).double()
    z = torch.randn(7, model.feature_size, dtype=torch.float64)
    a = torch.randn(7, model.action_size, dtype=torch.float64)
    dz, da = model.predict_mean_jacobian(z, a)
    ref_z, ref_a = torch.func.vmap(torch.func.jacrev(model.predict_mean, argnums=(0, 1)))(z, a)
    torch.testing.assert_close(dz, ref_z, atol=1e-10, rtol=1e-8)
    torch.testing.assert_close(da, ref_a, atol=1e-10, rtol=1e-8)


def test_predict_mean_is_deterministic_and_differentiable():
    torch.manual_seed(2)
    model = RSSM(TINY).double()
    z = torch.randn(4, model.feature_size, dtype=torch.float64, requires_grad=True)
    a = torch.randn(4, model.action_size, dtype=torch.float64, requires_grad=True)
    assert torch.equal(model.predict_mean(z, a), model.predict_mean(z, a))
    assert torch.autograd.gradcheck(lambda z, a: model.predict_mean(z, a).sum(), (z, a))
    # imagine(sample=False) is the chain of predict_mean
    actions = torch.randn(2, 3, model.action_size, dtype=torch.float64)
    traj = model.imagine(z[:2].detach(), actions)
    step = model.predict_mean(model.predict_mean(z[:2], actions[:, 0]), actions[:, 1])
    torch.testing.assert_close(traj[:, 2], step)
    # predict_mean's state part is the prior mean (computed without the std rows)
    s_next, h_next = model.split(model.predict_mean(z, a))
    torch.testing.assert_close(s_next, model.prior(h_next)[0])


def test_gaussian_kl_matches_torch_distributions():
    torch.manual_seed(3)
    mq, mp = torch.randn(5, 6), torch.randn(5, 6)
    sq, sp = torch.rand(5, 6) + 0.1, torch.rand(5, 6) + 0.1
    D = torch.distributions
    ref = D.kl_divergence(D.Independent(D.Normal(mq, sq), 1), D.Independent(D.Normal(mp, sp), 1))
    torch.testing.assert_close(gaussian_kl(mq, sq, mp, sp), ref)


def square_batch(episodes: int, T: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images, actions, rewards) of ``episodes`` moving-square episodes of T steps, stacked."""
    ep = moving_square_episodes(episodes, T=T)
    return tuple(torch.as_tensor(np.stack([e[k] for e in ep])) for k in ("images", "actions", "rewards"))


def test_elbo_terms_finite_and_free_nats_clip_kl():
    torch.manual_seed(4)
    model = RSSM(TINY)
    images, actions, rewards = square_batch(2, T=6)
    loss, m = elbo_loss(model, images, actions, rewards, torch.Generator().manual_seed(0))
    assert all(np.isfinite(v) for v in m.values())
    assert m["kl"] < TINY.free_nats  # an untrained model's posterior is close to its prior
    expected = m["image_nll"] + m["reward_nll"] + TINY.free_nats
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()  # the clipped KL gives no gradient, the likelihoods do
    assert model.obs2.weight.grad is not None
    generator = torch.Generator().manual_seed(0)
    weighted, m10 = elbo_loss(model, images, actions, rewards, generator, reward_scale=10)
    expected = m10["image_nll"] + 10 * m10["reward_nll"] + TINY.free_nats
    assert weighted.item() == pytest.approx(expected, rel=1e-5)


def test_kl_balance_keeps_the_kl_and_splits_its_gradient_between_prior_and_posterior():
    """KL balancing: the loss value is the ELBO's and the gradient is the likelihoods' plus α of the
    KL's gradient through the prior plus 1 − α of it through the posterior. The parts are found
    independently: the likelihoods' alone with the KL clipped away (free nats 10⁶), the prior's and
    the posterior's from α = 1 and α = 0; the prior head (img3, read only by the KL) gets α of the
    ELBO's gradient."""
    images, actions, rewards = square_batch(2, T=6)

    def grads(balance: float | None, free_nats: float = 0.0) -> tuple[float, torch.Tensor, torch.Tensor]:
        torch.manual_seed(6)
        model = RSSM(replace(TINY, free_nats=free_nats, kl_balance=balance))
        loss, _ = elbo_loss(model, images, actions, rewards, torch.Generator().manual_seed(0))
        loss.backward()
        flat = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        return loss.item(), flat, model.img3.weight.grad.clone()

    plain_loss, plain, plain_prior = grads(None)
    _, likelihoods, _ = grads(None, free_nats=1e6)
    _, through_prior, _ = grads(1.0)
    _, through_post, _ = grads(0.0)
    # the ELBO's gradient is the sum of the three parts
    torch.testing.assert_close(through_prior + through_post - likelihoods, plain, rtol=1e-4, atol=1e-6)
    for part in (through_prior, through_post):
        assert (part - likelihoods).abs().max() > 1e-4  # each part is really there
    for alpha in (0.3, 0.8):
        loss, flat, prior = grads(alpha)
        assert loss == pytest.approx(plain_loss, rel=1e-6)
        torch.testing.assert_close(flat, likelihoods + alpha * (through_prior - likelihoods)
                                   + (1 - alpha) * (through_post - likelihoods), rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(prior, alpha * plain_prior, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="kl_balance"):
        WorldModelConfig(kl_balance=1.5)


def test_decoding_a_random_subset_of_frames_estimates_the_image_term_without_bias():
    """The image term over a random fraction of the frames, averaged over draws, is the full one
    (the features are fixed here: observe uses the posterior mean when the noise is zeroed)."""
    torch.manual_seed(5)
    model = RSSM(TINY)
    images, actions, rewards = square_batch(3, T=6)
    model._noise = lambda shape, generator: torch.zeros(shape)  # deterministic features
    _, full = elbo_loss(model, images, actions, rewards)
    generator = torch.Generator().manual_seed(1)
    draws = [elbo_loss(model, images, actions, rewards, generator, decode_fraction=0.25)[1]["image_nll"]
             for _ in range(400)]
    assert np.mean(draws) == pytest.approx(full["image_nll"], rel=0.02)  # unbiased
    assert np.std(draws) > 0  # and really a subset
    _, again = elbo_loss(model, images, actions, rewards, decode_fraction=1.0)
    assert again == full  # 1: the ELBO as before, bit for bit
    with pytest.raises(ValueError, match="decode_fraction"):
        elbo_loss(model, images, actions, rewards, decode_fraction=0.0)


def test_loss_falls_on_tiny_dataset(tmp_path):
    replay = Replay(moving_square_episodes(8), length=8, seed=0)
    cfg = TrainConfig(steps=60, batch=8, length=8, lr=3e-3, log_every=10, checkpoint_every=60)
    train_world_model(TINY, replay, tmp_path, cfg, device="cpu", progress=False)
    import pandas as pd

    metrics = pd.read_csv(tmp_path / METRICS)
    assert list(metrics["step"]) == [10, 20, 30, 40, 50, 60]
    assert metrics["image_nll"].iloc[-1] < 0.7 * metrics["image_nll"].iloc[0]


class _Crash(RuntimeError):
    pass


class CrashingReplay(Replay):
    """Raises on the n-th sample, like a process killed mid-run."""

    def __init__(self, *args, crash_at: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls, self.crash_at = 0, crash_at

    def sample(self, batch):
        self.calls += 1
        if self.calls == self.crash_at:
            raise _Crash
        return super().sample(batch)


def test_resume_after_crash_equals_uninterrupted_run(tmp_path):
    episodes = moving_square_episodes(4)
    cfg = TrainConfig(steps=16, batch=4, length=6, lr=1e-3, log_every=2, checkpoint_every=5)
    full = train_world_model(TINY, Replay(episodes, 6), tmp_path / "a", cfg, device="cpu", progress=False)
    with pytest.raises(_Crash):  # dies at step 13: the last checkpoint is at step 10
        train_world_model(
            TINY, CrashingReplay(episodes, 6, crash_at=13), tmp_path / "b", cfg, device="cpu", progress=False
        )
    assert load_checkpoint(tmp_path / "b" / CHECKPOINT)["step"] == 10
    resumed = train_world_model(TINY, Replay(episodes, 6), tmp_path / "b", cfg, device="cpu", progress=False)
    for (name, p), q in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, msg=f"parameter {name} differs after resume")
    import pandas as pd

    steps = pd.read_csv(tmp_path / "b" / METRICS)["step"].tolist()
    assert steps == list(range(2, 17, 2))  # rows logged after the checkpoint were not duplicated
    torch.testing.assert_close(load_model(tmp_path / "b").img1.weight, full.img1.weight)


def test_missing_and_corrupt_checkpoint_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*missing"):
        load_checkpoint(tmp_path / "missing" / CHECKPOINT)
    bad = tmp_path / CHECKPOINT
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match=f"checkpoint {bad} is unreadable"):
        load_model(tmp_path)


def test_nan_loss_stops_with_the_step(tmp_path):
    episodes = moving_square_episodes(2)
    episodes[1]["rewards"][:] = np.nan
    cfg = TrainConfig(steps=50, batch=2, length=6, checkpoint_every=100)
    with pytest.raises(FloatingPointError, match=r"at step \d+"):
        train_world_model(TINY, Replay(episodes, 6), tmp_path, cfg, device="cpu", progress=False)


def test_replay_samples_every_window_uniformly():
    short = {"images": np.zeros((4, 2, 2, 3), np.uint8), "actions": np.zeros((3, 1)), "rewards": np.zeros(3)}
    long_ = {"images": np.ones((7, 2, 2, 3), np.uint8), "actions": np.ones((6, 1)), "rewards": np.arange(6.0)}
    replay = Replay([short, long_], length=3, seed=0)  # windows: 2 in short, 5 in long
    batch = replay.sample(7000)
    assert batch["images"].shape == (7000, 3, 2, 2, 3) and batch["actions"].shape == (7000, 2, 1)
    from_long = batch["images"][:, 0, 0, 0, 0] == 1
    assert from_long.mean() == pytest.approx(5 / 7, abs=0.02)
    starts = batch["rewards"][from_long, 0]
    np.testing.assert_allclose(np.bincount(starts.astype(int)) / len(starts), 0.2, atol=0.02)
    with pytest.raises(ValueError, match="T\\+1 images"):
        replay.add({"images": np.zeros((3, 2, 2, 3)), "actions": np.zeros((3, 1)), "rewards": np.zeros(3)})


def test_roc_auc_matches_pair_counting():
    from latco.paper.diagnostics import roc_auc

    rng = np.random.default_rng(5)
    scores = np.round(rng.normal(size=80), 1)  # rounding makes ties
    labels = rng.random(80) < 0.3
    pos, neg = scores[labels], scores[~labels]
    pairs = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert roc_auc(scores, labels) == pytest.approx(pairs)
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(scores, np.zeros(80, bool))


def test_open_loop_follows_the_true_actions():
    from latco.paper.diagnostics import open_loop, reward_quality

    torch.manual_seed(6)
    model = RSSM(TINY).eval()
    ep = moving_square_episodes(1, T=10)[0]
    ep["success"] = ep["rewards"] > np.median(ep["rewards"])
    out = open_loop(model, ep, context=3, horizon=5)
    assert out["pred_images"].shape == out["true_images"].shape == (5, 32, 32, 3)
    np.testing.assert_array_equal(out["true_rewards"], ep["rewards"][2:7])
    # reference: filter 3 images, then chain predict_mean on actions 2..6
    with torch.no_grad():
        z = model.observe(torch.as_tensor(ep["images"][None, :3]), torch.as_tensor(ep["actions"][None, :2]))
        z = z["feature"][0, -1]
        for t in range(2, 7):
            z = model.predict_mean(z, torch.as_tensor(ep["actions"][t]))
        assert out["pred_rewards"][-1] == pytest.approx(model.reward(z).item(), rel=1e-5)
    with pytest.raises(ValueError, match="does not fit"):
        open_loop(model, ep, context=3, horizon=9)
    q = reward_quality(model, [ep, ep], horizon=10)
    assert -1 <= q["open_loop_corr"] <= 1 and 0 <= q["success_auc"] <= 1


def test_open_loop_under_other_actions_and_action_sensitivity():
    from latco.paper.diagnostics import action_sensitivity, open_loop

    torch.manual_seed(7)
    model = RSSM(TINY).eval()
    eps = moving_square_episodes(3, T=10)
    other = np.random.default_rng(0).uniform(-1, 1, (6, TINY.action_size)).astype(np.float32)
    out = open_loop(model, eps[0], context=1, horizon=6, actions=other)
    with torch.no_grad():  # reference: chain predict_mean from the first image on the given actions
        z = model.initial_feature(torch.as_tensor(eps[0]["images"][0]))
        for a in other:
            z = model.predict_mean(z, torch.as_tensor(a))
        assert out["pred_rewards"][-1] == pytest.approx(model.reward(z).item(), rel=1e-5)
    with pytest.raises(ValueError, match="actions must have shape"):
        open_loop(model, eps[0], context=1, horizon=6, actions=other[:5])
    with pytest.raises(ValueError, match="at least 2 episodes"):
        action_sensitivity(model, eps[:1])
    sensitive = action_sensitivity(model, eps, horizon=8)
    assert sensitive["own_mae"] > 0 and sensitive["ratio"] != 1.0
    # a transition that cannot see the actions predicts the same frames under any actions
    with torch.no_grad():
        model.img1.weight[:, TINY.stoch :] = 0
    blind = action_sensitivity(model, eps, horizon=8)
    assert blind["own_mae"] == pytest.approx(blind["other_mae"], rel=1e-9)
    assert blind["ratio"] == pytest.approx(1.0)


def test_most_moving_episode_picks_the_longest_path():
    from latco.paper.diagnostics import most_moving_episode

    still = {"state": {"agent": np.zeros((11, 2)), "goal": np.ones((11, 2))}}
    slow = {"state": {"agent": np.linspace(0, 1, 11)[:, None] * [1, 0], "goal": np.ones((11, 2))}}
    # moves 3 units, but only after step 5: within a horizon of 5 it is the stillest
    late = {"state": {"agent": np.r_[np.zeros((6, 2)), np.linspace(1, 3, 5)[:, None] * [0, 1]]}}
    assert most_moving_episode([still, slow, late], horizon=10) == 2
    assert most_moving_episode([still, slow, late], horizon=5) == 1
    with pytest.raises(ValueError, match="no true positions"):
        most_moving_episode([{"state": {}}])


def test_balanced_replay_draws_its_fraction_from_rewarded_windows_uniformly():
    # rewards > 0 at step 4 of episode "a" and step 0 of episode "b"; length 3 covers 2 rewards
    a = {"images": np.zeros((9, 2, 2, 3), np.uint8), "actions": np.zeros((8, 1)),
         "rewards": np.array([0, 0, 0, 0, 1, 0, 0, 0.0])}
    b = {"images": np.ones((5, 2, 2, 3), np.uint8), "actions": np.ones((4, 1)),
         "rewards": np.array([1, 0, 0, 0.0])}
    replay = Replay([a, b], length=3, seed=1, balance=0.25)
    # windows: a has 7 (starts 0..6), rewarded starts 3, 4; b has 3, rewarded start 0
    assert replay.rewarded_windows == 3
    n_batches, batch = 2000, 8
    counts = np.zeros(3)
    for _ in range(n_batches):
        out = replay.sample(batch)
        rewarded = out["rewards"].max(1) > 0
        assert rewarded[:2].all()  # round(0.25 * 8) = 2 windows per batch from the rewarded ones
        first = out["rewards"][:2]
        from_b = out["images"][:2, 0, 0, 0, 0] == 1
        counts += [(~from_b & (first[:, 1] > 0)).sum(), (~from_b & (first[:, 0] > 0)).sum(), from_b.sum()]
    # the rule: uniform over the 3 rewarded windows (a@3, a@4, b@0)
    np.testing.assert_allclose(counts / counts.sum(), 1 / 3, atol=0.02)
    # the rest of the batch is uniform over all 10 windows: 3/10 of them rewarded
    rest = np.concatenate([replay.sample(batch)["rewards"][2:].max(1) > 0 for _ in range(2000)])
    assert rest.mean() == pytest.approx(0.3, abs=0.02)
    # no rewarded window (a dense-reward task, say): uniform sampling, no error
    dense = Replay([{**a, "rewards": -np.ones(8)}], length=3, seed=0, balance=0.5)
    assert dense.rewarded_windows == 0 and dense.sample(4)["images"].shape == (4, 3, 2, 2, 3)
    with pytest.raises(ValueError, match="balance"):
        Replay([a], length=3, balance=1.5)


def test_imagined_reward_calibration_matches_per_window_open_loop():
    from latco.paper.diagnostics import imagined_reward_calibration, open_loop

    torch.manual_seed(8)
    model = RSSM(TINY).eval()
    episodes = moving_square_episodes(3, T=12, seed=2)
    for ep in episodes:
        ep["success"] = ep["rewards"] > -0.2
    horizon, stride = 4, 2
    out = imagined_reward_calibration(model, episodes, horizon=horizon, stride=stride, threshold=0.0)
    # reference: open_loop with context s + 1 imagines window s from the filtered frame s
    pred, true, rewards = [], [], []
    for ep in episodes:
        for s in range(0, 12 - horizon + 1, stride):
            if ep["success"][s : s + horizon].any():
                ref = open_loop(model, ep, context=s + 1, horizon=horizon)
                pred.append(ref["pred_rewards"])
                true.append(ep["success"][s : s + horizon])
                rewards.append(ref["true_rewards"])
    pred, true, rewards = np.array(pred), np.array(true), np.array(rewards)
    assert out["windows"] == len(pred) > 0
    hit = pred > 0.0
    if hit.any():
        assert out["precision"] == pytest.approx((hit & true).sum() / hit.sum(), rel=1e-5)
    assert out["recall"] == pytest.approx((hit & true).sum() / true.sum(), rel=1e-5)
    assert out["predicted_return"] == pytest.approx(pred.sum(1).mean(), rel=1e-4, abs=1e-5)
    assert out["true_return"] == pytest.approx(rewards.sum(1).mean(), rel=1e-5)  # dense: the rewards
    assert out["gap"] == pytest.approx(rewards.sum(1).mean() - pred.sum(1).mean(), rel=1e-4, abs=1e-5)
    none = imagined_reward_calibration(model, [{**episodes[0], "success": np.zeros(12, bool)}])
    assert none["windows"] == 0 and np.isnan(none["recall"])


def test_weight_average_is_the_warmed_up_ema_of_the_trained_weights_and_survives_resume(tmp_path):
    """The average equals an EMA computed here from the weights after every step (each step a
    resumed run, which equals uninterrupted training), with decay min(d, (1 + n) / (10 + n))."""
    episodes = moving_square_episodes(4)
    decay, steps = 0.8, 12
    cfg = TrainConfig(steps=steps, batch=4, length=6, lr=1e-3, log_every=2, checkpoint_every=1, ema=decay)
    full = train_world_model(TINY, Replay(episodes, 6), tmp_path / "a", cfg, device="cpu", progress=False)
    torch.manual_seed(cfg.seed)
    raw = [RSSM(TINY)]  # step 0: the seeded initialization, as train_world_model draws it
    for n in range(1, steps + 1):
        step_cfg = TrainConfig(**{**cfg.__dict__, "steps": n})
        train_world_model(TINY, Replay(episodes, 6), tmp_path / "b", step_cfg, device="cpu", progress=False)
        raw.append(load_model(tmp_path / "b", average=False))
    name = "img1.weight"
    expected = raw[0].state_dict()[name].double()
    for n in range(1, steps + 1):
        d = min(decay, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * raw[n].state_dict()[name].double()
    torch.testing.assert_close(full.state_dict()[name].double(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(load_model(tmp_path / "b").state_dict()[name], full.state_dict()[name])
    last = load_model(tmp_path / "a", average=False).state_dict()[name]
    torch.testing.assert_close(last, raw[-1].state_dict()[name])
    assert not torch.allclose(last, full.state_dict()[name])  # the average is not the last weights
    plain = TrainConfig(**{**cfg.__dict__, "ema": 0.0, "steps": 2})
    train_world_model(TINY, Replay(episodes, 6), tmp_path / "c", plain, device="cpu", progress=False)
    with pytest.raises(ValueError, match="without a weight average"):  # resuming it with one
        averaged = TrainConfig(**{**cfg.__dict__, "steps": 3})
        train_world_model(TINY, Replay(episodes, 6), tmp_path / "c", averaged, device="cpu", progress=False)


def _loss_and_grads(model: RSSM, batch: tuple, **options) -> tuple[float, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    loss, _ = elbo_loss(model, *batch, torch.Generator().manual_seed(0), **options)
    loss.backward()
    return loss.item(), torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def test_channels_last_computes_the_same_loss_and_gradients():
    torch.manual_seed(6)
    plain = RSSM(TINY)
    nhwc = RSSM(TINY)
    nhwc.load_state_dict(plain.state_dict())
    nhwc.use_channels_last()
    assert nhwc.decoder.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    batch = square_batch(2, T=6)
    loss, grads = _loss_and_grads(plain, batch)
    loss_cl, grads_cl = _loss_and_grads(nhwc, batch)
    assert loss_cl == pytest.approx(loss, rel=1e-5)
    torch.testing.assert_close(grads_cl, grads, rtol=1e-4, atol=1e-5)
    nhwc.use_channels_last(False)
    assert nhwc.decoder.net[0].weight.is_contiguous() and not nhwc.decoder.channels_last


@pytest.mark.parametrize("image_size", [32, 64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_decoder_first_layer_matmul_equals_the_transposed_convolution(image_size, channels_last):
    """``Decoder.first_layer`` (one matmul) against ``nn.ConvTranspose2d`` on the 1 x 1 input, values
    and gradients, in both memory layouts."""
    torch.manual_seed(8)
    model = RSSM(replace(TINY, image_size=image_size)).use_channels_last(channels_last)
    decoder, conv = model.decoder, model.decoder.net[0]
    x = torch.randn(5, decoder.width, requires_grad=True)
    ours = decoder.first_layer(x)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    reference = conv(x.reshape(5, decoder.width, 1, 1).contiguous(memory_format=fmt))
    assert ours.shape == reference.shape == (5, conv.out_channels, *conv.kernel_size)
    assert ours.is_contiguous(memory_format=fmt)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)
    g = torch.randn_like(reference)
    grads = torch.autograd.grad(ours, (x, conv.weight, conv.bias), g)
    grads_ref = torch.autograd.grad(reference, (x, conv.weight, conv.bias), g)
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_decoder_bf16_approximates_the_float32_loss_and_gradient():
    """bf16 rounds the decoded means to 8 mantissa bits: the loss within 1 %, the gradient aligned."""
    torch.manual_seed(7)
    model = RSSM(TINY)
    batch = square_batch(2, T=6)
    loss, grads = _loss_and_grads(model, batch)
    loss_bf, grads_bf = _loss_and_grads(model, batch, decoder_bf16=True)
    assert loss_bf != loss and loss_bf == pytest.approx(loss, rel=1e-2)
    cosine = torch.nn.functional.cosine_similarity(grads, grads_bf, dim=0)
    assert cosine > 0.99


def test_training_with_channels_last_and_bf16_saves_a_plain_float32_model(tmp_path):
    replay = Replay(moving_square_episodes(8), length=8, seed=0)
    cfg = TrainConfig(steps=40, batch=8, length=8, lr=3e-3, log_every=10, checkpoint_every=20,
                      channels_last=True, decoder_bf16=True)
    trained = train_world_model(TINY, replay, tmp_path, cfg, device="cpu", progress=False)
    import pandas as pd

    metrics = pd.read_csv(tmp_path / METRICS)
    assert metrics["image_nll"].iloc[-1] < 0.8 * metrics["image_nll"].iloc[0]  # it learns
    loaded = load_model(tmp_path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    z = torch.randn(3, TINY.stoch + TINY.deter)
    torch.testing.assert_close(loaded.decode(z), trained.decode(z), rtol=1e-5, atol=1e-5)
