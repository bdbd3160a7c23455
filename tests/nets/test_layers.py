"""The one MLP builder (ascent.nets.layers.mlp_layers / MLP) behind ActorCritic, the off-policy actors
and QNetwork: every network keeps the state_dict it had before (keys, order, shapes: checkpoints
written before load, optimizer states line up), draws the same parameters from the same seed, and
computes the same outputs, bit for bit, as a copy of the code it replaced (the Old* classes below)."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ascent.nets.actors import CategoricalActor, DeterministicActor, SquashedGaussianActor
from ascent.nets.encoders import ObsEncoder
from ascent.nets.layers import ACTIVATIONS, MLP, mlp_layers, numpy_linear_stack, orthogonal_init
from ascent.nets.policies import ActorCritic
from ascent.nets.precision import autocast
from ascent.nets.q_networks import NoisyLinear, QEnsemble, QNetwork

BOX = gym.spaces.Box(-1, 1, (3,), np.float32)
IMAGE = gym.spaces.Box(0, 255, (4, 36, 36), np.uint8)

KEYS = {  # (key, shape) in state_dict order, recorded from the networks as they were before the MLP builder
    "ac_discrete": [
        ("actor_torso.layers.0.weight", (16, 3)), ("actor_torso.layers.0.bias", (16,)),
        ("actor_torso.layers.1.weight", (8, 16)), ("actor_torso.layers.1.bias", (8,)),
        ("critic_torso.layers.0.weight", (16, 3)), ("critic_torso.layers.0.bias", (16,)),
        ("critic_torso.layers.1.weight", (8, 16)), ("critic_torso.layers.1.bias", (8,)),
        ("action_head.weight", (4, 8)), ("action_head.bias", (4,)), ("value_head.weight", (1, 8)),
        ("value_head.bias", (1,)),
    ],
    "ac_box_shared": [
        ("log_std", (2,)), ("actor_torso.layers.0.weight", (16, 3)), ("actor_torso.layers.0.bias", (16,)),
        ("actor_torso.layers.1.weight", (8, 16)), ("actor_torso.layers.1.bias", (8,)),
        ("critic_torso.layers.0.weight", (16, 3)), ("critic_torso.layers.0.bias", (16,)),
        ("critic_torso.layers.1.weight", (8, 16)), ("critic_torso.layers.1.bias", (8,)),
        ("action_head.weight", (2, 8)), ("action_head.bias", (2,)), ("value_head.weight", (1, 8)),
        ("value_head.bias", (1,)),
    ],
    "ac_norm": [
        ("encoder.normalizer.mean", (3,)), ("encoder.normalizer.var", (3,)), ("encoder.normalizer.count", ()),
        ("actor_torso.layers.0.weight", (64, 3)), ("actor_torso.layers.0.bias", (64,)),
        ("actor_torso.layers.1.weight", (64, 64)), ("actor_torso.layers.1.bias", (64,)),
        ("critic_torso.layers.0.weight", (64, 3)), ("critic_torso.layers.0.bias", (64,)),
        ("critic_torso.layers.1.weight", (64, 64)), ("critic_torso.layers.1.bias", (64,)),
        ("action_head.weight", (2, 64)), ("action_head.bias", (2,)), ("value_head.weight", (1, 64)),
        ("value_head.bias", (1,)),
    ],
    "ac_image": [
        ("encoder.cnn.convs.0.weight", (32, 4, 8, 8)), ("encoder.cnn.convs.0.bias", (32,)),
        ("encoder.cnn.convs.2.weight", (64, 32, 4, 4)), ("encoder.cnn.convs.2.bias", (64,)),
        ("encoder.cnn.convs.4.weight", (64, 64, 3, 3)), ("encoder.cnn.convs.4.bias", (64,)),
        ("encoder.cnn.linear.weight", (512, 64)), ("encoder.cnn.linear.bias", (512,)),
        ("actor_torso.layers.0.weight", (32, 512)), ("actor_torso.layers.0.bias", (32,)),
        ("critic_torso.layers.0.weight", (32, 512)), ("critic_torso.layers.0.bias", (32,)),
        ("action_head.weight", (3, 32)), ("action_head.bias", (3,)), ("value_head.weight", (1, 32)),
        ("value_head.bias", (1,)),
    ],
    "ac_no_hidden": [
        ("action_head.weight", (3, 3)), ("action_head.bias", (3,)), ("value_head.weight", (1, 3)),
        ("value_head.bias", (1,)),
    ],
    "deterministic": [
        ("torso.layers.0.weight", (16, 3)), ("torso.layers.0.bias", (16,)), ("torso.layers.1.weight", (16, 16)),
        ("torso.layers.1.bias", (16,)), ("head.weight", (2, 16)), ("head.bias", (2,)),
    ],
    "squashed_norm": [
        ("torso.encoder.normalizer.mean", (3,)), ("torso.encoder.normalizer.var", (3,)),
        ("torso.encoder.normalizer.count", ()), ("torso.layers.0.weight", (16, 3)), ("torso.layers.0.bias", (16,)),
        ("encoder.normalizer.mean", (3,)), ("encoder.normalizer.var", (3,)), ("encoder.normalizer.count", ()),
        ("head.weight", (4, 16)), ("head.bias", (4,)),
    ],
    "categorical_image": [
        ("torso.encoder.cnn.convs.0.weight", (32, 4, 8, 8)), ("torso.encoder.cnn.convs.0.bias", (32,)),
        ("torso.encoder.cnn.convs.2.weight", (64, 32, 4, 4)), ("torso.encoder.cnn.convs.2.bias", (64,)),
        ("torso.encoder.cnn.convs.4.weight", (64, 64, 3, 3)), ("torso.encoder.cnn.convs.4.bias", (64,)),
        ("torso.encoder.cnn.linear.weight", (512, 64)), ("torso.encoder.cnn.linear.bias", (512,)),
        ("torso.layers.0.weight", (16, 512)), ("torso.layers.0.bias", (16,)),
        ("encoder.cnn.convs.0.weight", (32, 4, 8, 8)), ("encoder.cnn.convs.0.bias", (32,)),
        ("encoder.cnn.convs.2.weight", (64, 32, 4, 4)), ("encoder.cnn.convs.2.bias", (64,)),
        ("encoder.cnn.convs.4.weight", (64, 64, 3, 3)), ("encoder.cnn.convs.4.bias", (64,)),
        ("encoder.cnn.linear.weight", (512, 64)), ("encoder.cnn.linear.bias", (512,)), ("head.weight", (3, 16)),
        ("head.bias", (3,)),
    ],
    "q_plain": [
        ("hidden.0.weight", (16, 3)), ("hidden.0.bias", (16,)), ("hidden.1.weight", (16, 16)),
        ("hidden.1.bias", (16,)), ("advantage_head.weight", (3, 16)), ("advantage_head.bias", (3,)),
    ],
    "q_noisy_dueling_c51": [
        ("hidden.0.weight_mu", (16, 3)), ("hidden.0.weight_sigma", (16, 3)), ("hidden.0.bias_mu", (16,)),
        ("hidden.0.bias_sigma", (16,)), ("hidden.0.eps_in", (3,)), ("hidden.0.eps_out", (16,)),
        ("hidden.1.weight_mu", (16, 16)), ("hidden.1.weight_sigma", (16, 16)), ("hidden.1.bias_mu", (16,)),
        ("hidden.1.bias_sigma", (16,)), ("hidden.1.eps_in", (16,)), ("hidden.1.eps_out", (16,)),
        ("advantage_head.weight_mu", (15, 16)), ("advantage_head.weight_sigma", (15, 16)),
        ("advantage_head.bias_mu", (15,)), ("advantage_head.bias_sigma", (15,)), ("advantage_head.eps_in", (16,)),
        ("advantage_head.eps_out", (15,)), ("value_head.weight_mu", (5, 16)), ("value_head.weight_sigma", (5, 16)),
        ("value_head.bias_mu", (5,)), ("value_head.bias_sigma", (5,)), ("value_head.eps_in", (16,)),
        ("value_head.eps_out", (5,)),
    ],
    "q_image_dueling": [
        ("encoder.cnn.convs.0.weight", (32, 4, 8, 8)), ("encoder.cnn.convs.0.bias", (32,)),
        ("encoder.cnn.convs.2.weight", (64, 32, 4, 4)), ("encoder.cnn.convs.2.bias", (64,)),
        ("encoder.cnn.convs.4.weight", (64, 64, 3, 3)), ("encoder.cnn.convs.4.bias", (64,)),
        ("encoder.cnn.linear.weight", (512, 64)), ("encoder.cnn.linear.bias", (512,)),
        ("advantage_head.weight", (3, 512)), ("advantage_head.bias", (3,)), ("value_head.weight", (1, 512)),
        ("value_head.bias", (1,)),
    ],
    "q_norm": [
        ("encoder.normalizer.mean", (3,)), ("encoder.normalizer.var", (3,)), ("encoder.normalizer.count", ()),
        ("hidden.0.weight", (16, 3)), ("hidden.0.bias", (16,)), ("advantage_head.weight", (3, 16)),
        ("advantage_head.bias", (3,)),
    ],
    "ensemble": [
        ("weights.0", (2, 5, 16)), ("weights.1", (2, 16, 16)), ("weights.2", (2, 16, 1)), ("biases.0", (2, 1, 16)),
        ("biases.1", (2, 1, 16)), ("biases.2", (2, 1, 1)),
    ],
    "mlp": [
        ("layers.0.weight", (16, 4)), ("layers.0.bias", (16,)), ("layers.1.weight", (16, 16)),
        ("layers.1.bias", (16,)), ("layers.2.weight", (3, 16)), ("layers.2.bias", (3,)),
    ],
}

NETWORKS = {
    "ac_discrete": lambda: ActorCritic(BOX, gym.spaces.Discrete(4), (16, 8)),
    "ac_box_shared": lambda: ActorCritic(BOX, gym.spaces.Box(-1, 1, (2,), np.float32), (16, 8), share_torso=True),
    "ac_norm": lambda: ActorCritic(BOX, gym.spaces.Discrete(2), normalize_obs=True),
    "ac_image": lambda: ActorCritic(IMAGE, gym.spaces.Discrete(3), (32,)),
    "ac_no_hidden": lambda: ActorCritic(BOX, gym.spaces.Discrete(3), ()),
    "deterministic": lambda: DeterministicActor(BOX, 2, (16, 16)),
    "squashed_norm": lambda: SquashedGaussianActor(BOX, 2, (16,), "tanh", normalize_obs=True),
    "categorical_image": lambda: CategoricalActor(IMAGE, 3, (16,)),
    "q_plain": lambda: QNetwork(BOX, 3, (16, 16)),
    "q_noisy_dueling_c51": lambda: QNetwork(BOX, 3, (16, 16), dueling=True, noisy=True, n_atoms=5),
    "q_image_dueling": lambda: QNetwork(IMAGE, 3, (), dueling=True),
    "q_norm": lambda: QNetwork(BOX, 3, (16,), normalize_obs=True),
    "ensemble": lambda: QEnsemble(2, 5, (16, 16)),
    "mlp": lambda: MLP(4, (16, 16), 3, "tanh", 0.5, True),
}


@pytest.mark.parametrize("name", list(KEYS))
def test_state_dict_keys_order_and_shapes_are_those_of_before(name):
    net = NETWORKS[name]()
    assert [(k, tuple(v.shape)) for k, v in net.state_dict().items()] == KEYS[name]


def test_a_checkpoint_of_before_loads_strictly():
    # a state_dict with exactly the recorded keys and shapes loads (strict) into the new networks
    for name, keys in KEYS.items():
        net = NETWORKS[name]()
        net.load_state_dict({k: torch.full(shape, 0.5) for k, shape in keys})
        assert all(torch.all(v == 0.5) for v in net.state_dict().values())


# ---- a copy of the code before the builder: the reference for parameters and outputs -------------
class OldMLP(nn.Module):
    def __init__(self, in_dim, hidden, out_dim=None, activation="tanh", out_gain=1.0, ortho_init=True):
        super().__init__()
        widths = [in_dim, *hidden] + ([out_dim] if out_dim is not None else [])
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.n_activated = len(hidden)
        self.activation = ACTIVATIONS[activation]
        self.out_dim = widths[-1]
        if ortho_init:
            for i, layer in enumerate(self.layers):
                orthogonal_init(layer, math.sqrt(2) if i < self.n_activated else out_gain)

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = F.linear(x, layer.weight, layer.bias)
            if i < self.n_activated:
                x = self.activation(x)
        return x


class OldActorCritic(nn.Module):  # the parameters of ActorCritic.__init__, for non-image observations
    def __init__(self, obs_space, head_dim, box, net_arch=(64, 64), activation="tanh", share_torso=False,
                 log_std_init=0.0, ortho_init=True):
        super().__init__()
        self.encoder = ObsEncoder(obs_space)
        in_dim = self.encoder.dim
        self.actor_torso = OldMLP(in_dim, net_arch, None, activation, ortho_init=ortho_init)
        self.critic_torso = self.actor_torso if share_torso else OldMLP(in_dim, net_arch, None, activation,
                                                                         ortho_init=ortho_init)
        self.action_head = nn.Linear(self.actor_torso.out_dim, head_dim)
        self.value_head = nn.Linear(self.critic_torso.out_dim, 1)
        if ortho_init:
            orthogonal_init(self.action_head, 0.01)
            orthogonal_init(self.value_head, 1.0)
        if box:
            self.log_std = nn.Parameter(torch.full((head_dim,), float(log_std_init)))

    def forward(self, x):
        return (F.linear(self.actor_torso(x), self.action_head.weight, self.action_head.bias),
                F.linear(self.critic_torso(x), self.value_head.weight, self.value_head.bias).squeeze(-1))


class OldTorso(nn.Module):
    def __init__(self, observation_space, hidden, activation, normalize_obs, precision):
        super().__init__()
        self.encoder = ObsEncoder(observation_space, normalize_obs)
        widths = [self.encoder.dim, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.activation = ACTIVATIONS[activation]
        self.out_dim = widths[-1]
        self.precision = precision

    def forward(self, x):
        with autocast(self.precision):
            for layer in self.layers:
                x = self.activation(F.linear(x, layer.weight, layer.bias))
        return x


class OldActor(nn.Module):  # the three actors: torso, then head (out_dim = action_dim, 2 action_dim or |A|)
    def __init__(self, observation_space, out_dim, hidden, activation="relu", normalize_obs=False, precision="fp32"):
        super().__init__()
        self.torso = OldTorso(observation_space, hidden, activation, normalize_obs, precision)
        self.encoder = self.torso.encoder
        self.head = nn.Linear(self.torso.out_dim, out_dim)

    def forward(self, x):
        return F.linear(self.torso(x).float(), self.head.weight, self.head.bias)


class OldQNetwork(nn.Module):
    def __init__(self, observation_space, n_actions, net_arch=(64, 64), activation="relu", dueling=False, noisy=False,
                 n_atoms=1, sigma0=0.5, normalize_obs=False, precision="fp32"):
        super().__init__()
        self.n_actions, self.n_atoms, self.precision = n_actions, n_atoms, precision
        self.encoder = ObsEncoder(observation_space, normalize_obs)

        def linear(a, b):
            return NoisyLinear(a, b, sigma0) if noisy else nn.Linear(a, b)

        widths = [self.encoder.dim, *net_arch]
        self.hidden = nn.ModuleList(linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.activation = ACTIVATIONS[activation]
        self.advantage_head = linear(widths[-1], n_actions * n_atoms)
        self.value_head = linear(widths[-1], n_atoms) if dueling else None

    def forward(self, obs):
        with autocast(self.precision):
            h = self.encoder(obs)
            for layer in self.hidden:
                h = self.activation(layer(h) if type(layer) is NoisyLinear else F.linear(h, layer.weight, layer.bias))
            head = self.advantage_head
            out = (head(h) if type(head) is NoisyLinear else F.linear(h, head.weight, head.bias)).view(
                -1, self.n_actions, self.n_atoms)
            if self.value_head is not None:
                v = self.value_head(h).view(-1, 1, self.n_atoms)
                out = v + out - out.mean(1, keepdim=True)
        out = out.float()
        return out.squeeze(2) if self.n_atoms == 1 else out


def old_ensemble_params(n_critics, in_dim, hidden, out_dim=1):
    widths, weights, biases = [in_dim, *hidden, out_dim], [], []
    for a, b in zip(widths[:-1], widths[1:]):
        bound = 1.0 / math.sqrt(a)
        weights.append(torch.empty(n_critics, a, b).uniform_(-bound, bound))
        biases.append(torch.empty(n_critics, 1, b).uniform_(-bound, bound))
    return weights + biases


def built(make, seed=0):
    torch.manual_seed(seed)
    return make()


def assert_same_parameters(new: nn.Module, old: nn.Module):
    new_sd, old_sd = new.state_dict(), old.state_dict()
    old_sd = {k: v for k, v in old_sd.items() if k in new_sd}  # (the Old* copies leave some parts out)
    assert list(old_sd) == [k for k in new_sd if k in old_sd] and old_sd
    for k, v in old_sd.items():
        assert torch.equal(new_sd[k], v), k


@pytest.mark.parametrize("action_space, box", [(gym.spaces.Discrete(4), False),
                                               (gym.spaces.Box(-1, 1, (2,), np.float32), True)])
@pytest.mark.parametrize("share, ortho, activation, arch",
                         [(False, True, "tanh", (16, 8)), (True, True, "relu", (16,)), (False, False, "tanh", (8, 8)),
                          (False, True, "relu", ())])
def test_actor_critic_same_parameters_and_outputs_as_before(action_space, box, share, ortho, activation, arch):
    for seed in (0, 1):
        new = built(lambda: ActorCritic(BOX, action_space, arch, activation, share, -0.5, ortho), seed)
        head_dim = int(action_space.n) if not box else 2
        old = built(lambda: OldActorCritic(BOX, head_dim, box, arch, activation, share, -0.5, ortho), seed)
        assert list(new.state_dict()) == list(old.state_dict())
        assert_same_parameters(new, old)
        x = torch.randn(6, 3)
        with torch.no_grad():
            params, value = old(x)
            assert torch.equal(new.dist_params(x), params) and torch.equal(new.value(x), value)
            assert torch.equal(new(x)[1], value)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("activation, normalize", [("relu", False), ("tanh", True)])
def test_off_policy_actors_same_parameters_and_outputs_as_before(precision, activation, normalize):
    x = torch.randn(6, 3)
    for cls, out_dim in ((DeterministicActor, 2), (SquashedGaussianActor, 4), (CategoricalActor, 3)):
        n = out_dim // 2 if cls is SquashedGaussianActor else out_dim
        new = built(lambda: cls(BOX, n, (16, 16), activation, normalize, precision))
        old = built(lambda: OldActor(BOX, out_dim, (16, 16), activation, normalize, precision))
        assert list(new.state_dict()) == list(old.state_dict())
        assert_same_parameters(new, old)
        with torch.no_grad():
            assert torch.equal(new.torso(x), old.torso(x))
            assert torch.equal(F.linear(new.torso(x).float(), new.head.weight, new.head.bias), old(x))
            if cls is DeterministicActor:
                assert torch.equal(new(x), torch.tanh(old(x)))
            if cls is CategoricalActor:
                assert torch.equal(new.log_probs(x), torch.log_softmax(old(x), -1))


def test_off_policy_actor_on_images_same_parameters_as_before():
    new = built(lambda: CategoricalActor(IMAGE, 3, (16,)))
    old = built(lambda: OldActor(IMAGE, 3, (16,)))
    assert list(new.state_dict()) == list(old.state_dict())
    assert_same_parameters(new, old)
    assert [n for n, _ in new.named_parameters()] == [n for n, _ in old.named_parameters()]  # optimizer states


@pytest.mark.parametrize("dueling", [False, True])
@pytest.mark.parametrize("noisy", [False, True])
@pytest.mark.parametrize("n_atoms, arch, precision", [(1, (16, 16), "fp32"), (5, (16,), "fp32"), (1, (16,), "bf16")])
def test_q_network_same_parameters_and_outputs_as_before(dueling, noisy, n_atoms, arch, precision):
    new = built(lambda: QNetwork(BOX, 3, arch, "relu", dueling, noisy, n_atoms, 0.4, precision=precision))
    old = built(lambda: OldQNetwork(BOX, 3, arch, "relu", dueling, noisy, n_atoms, 0.4, precision=precision))
    assert list(new.state_dict()) == list(old.state_dict())
    assert_same_parameters(new, old)
    obs = torch.randn(6, 3)
    with torch.no_grad():
        assert torch.equal(new(obs), old(obs))


def test_q_network_on_images_same_parameters_as_before():
    new = built(lambda: QNetwork(IMAGE, 3, (), dueling=True))
    old = built(lambda: OldQNetwork(IMAGE, 3, (), dueling=True))
    assert_same_parameters(new, old)
    obs = torch.randint(0, 255, (2, 4, 36, 36), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(new(obs), old(obs))


def test_q_ensemble_same_parameters_as_before():
    new = built(lambda: QEnsemble(2, 5, (16, 16)))
    old = built(lambda: old_ensemble_params(2, 5, (16, 16)))
    assert all(torch.equal(p, q) for p, q in zip(new.parameters(), old))


def test_mlp_same_parameters_as_before_with_positional_ortho_init():
    for ortho in (True, False):  # (ascent.algorithms.ac.QCritic passes ortho_init as the sixth argument)
        new, old = built(lambda: MLP(4, (16, 16), 3, "tanh", 0.5, ortho)), built(lambda: OldMLP(4, (16, 16), 3, "tanh", 0.5, ortho))
        assert_same_parameters(new, old)
        x = torch.randn(5, 4)
        assert torch.equal(new(x), old(x))


# ---- the builder's choices ------------------------------------------------------------------------
def test_builder_init_schemes_gains_and_layer_types():
    layers = mlp_layers(6, (8, 8), 2, init="orthogonal", hidden_gain=2.0, out_gain=0.5)
    for layer, gain in zip(layers, (2.0, 2.0, 0.5)):
        w = layer.weight.detach()  # rows orthonormal (out <= in) or columns (out > in), times the gain
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        torch.testing.assert_close(gram, gain**2 * torch.eye(min(w.shape)), atol=1e-5, rtol=0)
        assert torch.all(layer.bias == 0)
    torch.manual_seed(0)
    default = mlp_layers(6, (8,), 2, init="torch_default")
    torch.manual_seed(0)
    reference = [nn.Linear(6, 8), nn.Linear(8, 2)]
    assert all(torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias) for a, b in zip(default, reference))
    noisy = mlp_layers(6, (8,), 2, init="torch_default", layer=NoisyLinear)
    assert [type(layer) for layer in noisy] == [NoisyLinear, NoisyLinear]
    with pytest.raises(ValueError, match="torch_default"):
        mlp_layers(6, (8,), init="orthogonal", layer=NoisyLinear)
    with pytest.raises(ValueError, match="unknown init"):
        mlp_layers(6, (8,), init="xavier")
    with pytest.raises(ValueError, match="unknown activation"):
        MLP(6, (8,), activation="swish")


def test_mlp_with_a_layer_factory_calls_its_layers():
    torch.manual_seed(0)
    mlp = MLP(4, (8,), 2, "relu", init="torch_default", layer=NoisyLinear)
    x = torch.randn(3, 4)
    expected = mlp.layers[1](F.relu(mlp.layers[0](x)))
    assert torch.equal(mlp(x), expected)


def test_q_ensemble_orthogonal_init():
    q = QEnsemble(2, 5, (8,), init="orthogonal", out_gain=0.1)
    w = q.weights[0][1].detach()  # (in 5, out 8): columns > rows, rows orthonormal times sqrt 2
    torch.testing.assert_close(w @ w.T, 2.0 * torch.eye(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(q.weights[1][0].detach().norm(), torch.tensor(0.1), atol=1e-6, rtol=0)
    assert all(torch.all(b == 0) for b in q.biases)


def test_numpy_linear_stack_reads_the_builders_layers():
    mlp = MLP(4, (16, 16), 3, "relu")
    forward = numpy_linear_stack(mlp.layers, "relu")
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(forward(x), mlp(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
