"""ObsEncoder on Dict and Tuple observation spaces: one sub-encoder per key / element, the parts'
preprocessed x concatenated into one flat float vector (normalized per Box part), raw batched
observations as a Gymnasium vector env returns them; images inside, and off-policy networks, refused."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import ascent
from ascent.errors import EnvError
from ascent.nets.actors import SquashedGaussianActor
from ascent.nets.encoders import ObsEncoder
from ascent.nets.policies import ActorCritic
from ascent.nets.q_networks import QNetwork

BOX = gym.spaces.Box(-1, 1, (2,), np.float32)
DICT = gym.spaces.Dict({"pos": BOX, "goal": gym.spaces.Discrete(3)})  # (Gymnasium sorts the keys: goal, pos)


def test_dict_of_box_and_discrete_is_the_concatenation_in_key_order():
    enc = ObsEncoder(DICT)
    assert enc.keys == ["goal", "pos"] and enc.dim == 5 and enc.x_shape == (5,) and enc.x_dtype == torch.float32
    assert enc.cnn is None and not enc.flattens_only
    obs = {"pos": np.array([[0.5, -0.5], [0.1, 0.2], [1.0, 0.0]], np.float32), "goal": np.array([2, 0, 1])}
    x = enc.preprocess(obs)
    expected = torch.tensor([[0, 0, 1, 0.5, -0.5], [1, 0, 0, 0.1, 0.2], [0, 1, 0, 1.0, 0.0]])
    assert x.dtype == torch.float32 and torch.equal(x, expected)
    assert torch.equal(enc(obs), x)  # no learned features
    assert torch.equal(enc.preprocess({k: torch.as_tensor(v) for k, v in obs.items()}), x)  # tensors alike


def test_tuple_and_nested_spaces():
    space = gym.spaces.Tuple((gym.spaces.Discrete(3), gym.spaces.Box(0, 1, (2, 2)), gym.spaces.MultiDiscrete([2, 3]),
                              gym.spaces.MultiBinary(2), gym.spaces.Dict({"inner": gym.spaces.Discrete(2)})))
    enc = ObsEncoder(space)
    assert enc.dim == 3 + 4 + 5 + 2 + 2 and enc.x_shape == (16,)
    space.seed(0)
    samples = [space.sample() for _ in range(4)]
    batch = enc.stack(samples)  # a tuple of batched arrays, as a vector env returns it
    assert isinstance(batch, tuple) and batch[1].shape == (4, 2, 2)
    x = enc.preprocess(batch)
    assert x.shape == (4, 16)
    for i, (d, box, md, mb, inner) in enumerate(samples):
        row = torch.cat([torch.eye(3)[d], torch.as_tensor(box).reshape(-1), torch.eye(2)[md[0]], torch.eye(3)[md[1]],
                         torch.as_tensor(mb, dtype=torch.float32), torch.eye(2)[inner["inner"]]])
        assert torch.equal(x[i], row)


def test_simple_spaces_accept_numpy_as_before():
    for space in (BOX, gym.spaces.Discrete(4), gym.spaces.MultiDiscrete([2, 3])):
        enc = ObsEncoder(space)
        space.seed(0)
        obs = np.stack([space.sample() for _ in range(5)])
        assert torch.equal(enc.preprocess(obs), enc.preprocess(torch.from_numpy(obs)))


def test_normalization_per_box_key():
    space = gym.spaces.Dict({"a": gym.spaces.Box(-np.inf, np.inf, (2,), np.float32), "b": gym.spaces.Discrete(2),
                             "c": gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)})
    enc = ObsEncoder(space, normalize=True)
    assert enc.normalizer is None and [p.normalizer is not None for p in enc.parts] == [True, False, True]
    assert [k for k in enc.state_dict() if k.endswith("mean")] == ["parts.0.normalizer.mean", "parts.2.normalizer.mean"]
    rng = np.random.default_rng(0)
    for _ in range(20):  # "a" around 100 with std 10, "c" around -3 with std 0.1
        obs = {"a": (100 + 10 * rng.standard_normal((64, 2))).astype(np.float32), "b": rng.integers(0, 2, 64),
               "c": (-3 + 0.1 * rng.standard_normal((64, 1))).astype(np.float32)}
        x = enc.preprocess(obs, update_stats=True)
    np.testing.assert_allclose(enc.parts[0].normalizer.mean.numpy(), 100, atol=0.5)
    np.testing.assert_allclose(enc.parts[2].normalizer.mean.numpy(), -3, atol=0.01)
    assert x.shape == (64, 5) and abs(float(x[:, [0, 1, 4]].mean())) < 0.2 and 0.8 < float(x[:, [0, 1, 4]].std()) < 1.2
    assert set(x[:, 2:4].unique().tolist()) <= {0.0, 1.0}  # the one-hot stays as it is
    before = enc.parts[0].normalizer.mean.clone()
    enc.preprocess(obs)  # without update_stats the statistics stay
    assert torch.equal(enc.parts[0].normalizer.mean, before)


def test_refused_spaces_say_why():
    image = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    with pytest.raises(EnvError, match="image entry"):
        ObsEncoder(gym.spaces.Dict({"pixels": image, "pos": BOX}))
    with pytest.raises(EnvError, match="image entry"):
        ObsEncoder(gym.spaces.Tuple((BOX, gym.spaces.Dict({"pixels": image}))))
    with pytest.raises(EnvError, match="replay buffer.*FlattenObservation"):
        QNetwork(DICT, 3)
    with pytest.raises(EnvError, match="replay buffer.*FlattenObservation"):
        SquashedGaussianActor(gym.spaces.Tuple((BOX,)), 2, (8,))
    with pytest.raises(EnvError, match="empty"):
        ObsEncoder(gym.spaces.Dict({}))
    with pytest.raises(EnvError, match="not supported"):
        ObsEncoder(gym.spaces.Text(4))


class DictGoalEnv(gym.Env):
    """Observe {"goal": k, "pos": noise}; reward 1 for the action k. Episodes are truncated after 10
    steps (the same-step autoreset's final observations are dicts too)."""

    observation_space = DICT
    action_space = gym.spaces.Discrete(3)

    def _obs(self):
        return {"goal": self.goal, "pos": self.np_random.uniform(-1, 1, 2).astype(np.float32)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.goal = 0, int(self.np_random.integers(3))
        return self._obs(), {}

    def step(self, action):
        reward = float(int(action) == self.goal)
        self.t += 1
        self.goal = int(self.np_random.integers(3))
        return self._obs(), reward, False, self.t >= 10, {}


def test_actor_critic_acts_on_a_vector_envs_dict_observations():
    envs = gym.vector.SyncVectorEnv([DictGoalEnv] * 3)
    obs, _ = envs.reset(seed=0)
    assert isinstance(obs, dict) and obs["pos"].shape == (3, 2)
    policy = ActorCritic(envs.single_observation_space, envs.single_action_space, (16,), normalize_obs=True)
    assert policy.numpy_actor(np.random.default_rng(0)) is None  # (acts through torch)
    x = policy.encoder.preprocess(obs, update_stats=True)
    assert x.shape == (3, 5)
    action = policy.env_action(obs, deterministic=False)
    assert action.shape == (3,) and all(envs.single_action_space.contains(a) for a in action)
    envs.close()


@pytest.mark.parametrize("algo, kw", [
    ("ppo", dict(n_envs=2, n_steps=32, batch_size=32, n_epochs=2)),
    ("a2c", dict(n_envs=2, n_steps=8)),
    ("trpo", dict(n_envs=2, n_steps=32, batch_size=32, n_critic_updates=1)),
    ("ac", dict(n_envs=2)),
    ("reinforce", dict(n_envs=2, n_episodes=2)),
    ("offpg", dict(n_envs=2, n_episodes=2)),
])
def test_on_policy_algorithms_train_act_and_reload_on_dict_observations(algo, kw, tmp_path):
    agent = ascent.get_algorithm(algo)(DictGoalEnv, seed=0, verbose=0, net_arch=(16,), normalize_obs=True, **kw)
    agent.learn(200)
    assert agent.num_steps >= 200 and agent.policy.encoder.kind == "dict"
    env = DictGoalEnv()
    obs, _ = env.reset(seed=0)
    single = agent.act(obs)  # one Dict observation
    batch = agent.act({k: np.stack([v, v]) for k, v in obs.items()})  # a batch of two
    assert np.shape(single) == () and batch.shape == (2,) and batch[0] == single
    assert agent.evaluate(2)["episodes"] == 2
    agent.save(tmp_path / "m.pt")
    assert ascent.load(tmp_path / "m.pt", env=DictGoalEnv, verbose=0).act(obs) == single
