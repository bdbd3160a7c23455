"""Action masking in the actor-critic: a Dict observation's `action_mask` keeps illegal actions out of
sampling, the greedy action, log-probs, entropy and their gradient; the mask stays 0/1 under observation
normalization; the numpy logits match torch's; a mask that does not fit the actions is refused."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from ascent.envs.vector import batch_of
from ascent.errors import EnvError
from ascent.nets.policies import ActorCritic

N = 5
SPACE = gym.spaces.Dict({"observation": gym.spaces.Box(-1.0, 1.0, (3,), np.float32),
                         "action_mask": gym.spaces.Box(0, 1, (N,), np.int8)})


def observations(masks: list[list[int]], seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"action_mask": np.array(masks, np.int8),
            "observation": rng.uniform(-1, 1, (len(masks), 3)).astype(np.float32)}


def policy(normalize_obs: bool = False) -> ActorCritic:
    torch.manual_seed(0)
    net = ActorCritic(SPACE, gym.spaces.Discrete(N), net_arch=(16,), ortho_init=False, normalize_obs=normalize_obs)
    with torch.no_grad():  # (large logits: unmasked, the illegal actions would be drawn often)
        net.action_head.weight.mul_(20.0)
    return net


def test_a_masked_policy_never_draws_an_illegal_action():
    net = policy()
    masks = [[1, 0, 0, 0, 0], [0, 1, 0, 1, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 0]] * 500
    obs = observations(masks)
    x = net.encoder.preprocess(obs)
    legal = torch.as_tensor(np.array(masks, bool))
    with torch.no_grad():
        for _ in range(5):
            action, logprob, _ = net.act(x)
            assert legal.gather(1, action[:, None]).all()
            assert torch.isfinite(logprob).all()
        greedy = net.act(x, deterministic=True)[0]
        assert legal.gather(1, greedy[:, None]).all()
        assert legal.gather(1, torch.as_tensor(net.env_action(obs, deterministic=False))[:, None]).all()
    # every legal action is still drawn
    with torch.no_grad():
        drawn = {int(a) for a in net.act(x[3::4])[0]}
    assert drawn <= {0, 1, 2, 3}
    unmasked = ActorCritic(gym.spaces.Box(-1.0, 1.0, (3,), np.float32), gym.spaces.Discrete(N), net_arch=(16,))
    assert unmasked.mask_slice is None


def test_masked_log_probs_and_entropy_match_a_hand_computation():
    net = policy()
    obs = observations([[0, 1, 0, 1, 1], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    x = net.encoder.preprocess(obs)
    with torch.no_grad():
        h = net.actor_torso(net.encoder.features(x))
        raw = net.action_head(h)  # the logits before masking
    dist = net.distribution(x)
    for row, legal in enumerate(([1, 3, 4], [0], list(range(N)))):  # (no legal action: nothing masked)
        z = raw[row, legal].double()
        p = torch.softmax(z, 0)
        for i, a in enumerate(legal):
            lp = dist.log_prob(torch.tensor([0, 0, 0]).index_fill(0, torch.tensor([row]), a))[row]
            assert lp.item() == pytest.approx(math.log(p[i].item()), abs=1e-5)
        assert dist.entropy()[row].item() == pytest.approx(-(p * p.log()).sum().item(), abs=1e-5)
    assert dist.entropy()[1].item() == 0.0  # one legal move: no choice, no entropy


def test_illegal_actions_get_no_gradient_and_the_loss_stays_finite():
    net = policy()
    obs = observations([[0, 1, 0, 1, 0]] * 4)
    x = net.encoder.preprocess(obs)
    dist, _ = net(x)
    (dist.log_prob(torch.tensor([1, 3, 1, 3])).sum() + dist.entropy().sum()).backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    logits = net.dist_params(x)
    assert (logits[:, [0, 2, 4]] == torch.finfo(logits.dtype).min).all()


def test_the_mask_stays_zero_one_under_observation_normalization():
    net = policy(normalize_obs=True)
    obs = observations([[0, 1, 0, 1, 1], [1, 1, 1, 1, 1]] * 50)
    x = net.encoder.preprocess(obs, update_stats=True)
    x = net.encoder.preprocess(obs, update_stats=True)
    assert torch.equal(x[:, net.mask_slice], torch.as_tensor(obs["action_mask"], dtype=torch.float32))
    with torch.no_grad():
        assert set(net.act(x)[0][::2].tolist()) <= {1, 3, 4}


def test_numpy_logits_match_the_torch_policy():
    net = policy()
    space = net.encoder.space
    space.seed(0)
    obs = batch_of(space, [space.sample() for _ in range(32)])
    with torch.no_grad():
        expected = net.dist_params(net.encoder.preprocess(obs)).numpy()
    np.testing.assert_allclose(net.numpy_logits()(obs), expected, rtol=1e-5, atol=1e-5)
    assert policy(normalize_obs=True).numpy_logits() is None  # (normalization: acting goes through torch)


def test_a_mask_that_does_not_fit_the_actions_is_refused():
    with pytest.raises(EnvError, match="action_mask"):
        ActorCritic(SPACE, gym.spaces.Discrete(N + 1))
    with pytest.raises(EnvError, match="action_mask"):
        ActorCritic(SPACE, gym.spaces.Box(-1.0, 1.0, (N,), np.float32))
