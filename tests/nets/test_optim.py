"""The low-overhead Adam and gradient clipping against PyTorch's own."""

import pytest
import torch

from ascent.nets.optim import Adam, FlatParameters, OptimizerStep, RMSprop


def make_params(seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(5, 3, generator=g, requires_grad=True), torch.randn(3, generator=g, requires_grad=True)]


def loss_of(params, t):
    return ((params[0] * (t + 1)).sin().sum() + (params[1] ** 2).sum() * 0.3)


def test_adam_matches_torch_adam_and_round_trips_state():
    ours, ref = make_params(0), make_params(0)
    opt, ref_opt = Adam(ours, lr=0.01, eps=1e-5), torch.optim.Adam(ref, lr=0.01, eps=1e-5)
    for t in range(5):
        for params, o in ((ours, opt), (ref, ref_opt)):
            o.zero_grad()
            loss_of(params, t).backward()
            o.step()
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)
    # state_dict in torch's format: a torch Adam can continue from ours and vice versa
    state = opt.state_dict()
    assert all(float(s["step"]) == 5 for s in state["state"].values())
    cont = make_params(1)
    with torch.no_grad():
        for c, a in zip(cont, ours):
            c.copy_(a)
    opt2 = Adam(cont, lr=0.01, eps=1e-5)
    opt2.load_state_dict(state)
    for params, o in ((cont, opt2), (ref, ref_opt)):
        o.zero_grad()
        loss_of(params, 5).backward()
        o.step()
    for a, b in zip(cont, ref):
        torch.testing.assert_close(a, b)



@pytest.mark.parametrize("kind", [Adam, RMSprop])
def test_reset_state_makes_the_next_step_a_fresh_optimizers_first(kind):
    ours, ref = make_params(0), make_params(0)
    opt = kind(ours, lr=0.01)
    for t in range(3):  # (moments and a step count that a fresh optimizer would not have)
        opt.zero_grad()
        loss_of(ours, t).backward()
        opt.step()
    with torch.no_grad():
        for r, a in zip(ref, ours):
            r.copy_(a)
    opt.reset_state()
    fresh = (torch.optim.Adam if kind is Adam else torch.optim.RMSprop)(ref, lr=0.01)
    for params, o in ((ours, opt), (ref, fresh)):
        o.zero_grad()
        loss_of(params, 3).backward()
        o.step()
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)
    assert all(float(s["step"]) == 1 for s in opt.state_dict()["state"].values())

def test_rmsprop_matches_torch_rmsprop():
    ours, ref = make_params(3), make_params(3)
    opt = RMSprop(ours, lr=0.01, alpha=0.99, eps=1e-5)
    ref_opt = torch.optim.RMSprop(ref, lr=0.01, alpha=0.99, eps=1e-5)
    for t in range(6):
        for params, o in ((ours, opt), (ref, ref_opt)):
            o.zero_grad()
            loss_of(params, t).backward()
            o.step()
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)
    for a, b in zip(opt.state_dict()["state"].values(), ref_opt.state_dict()["state"].values()):
        torch.testing.assert_close(a["square_avg"], b["square_avg"])
        assert float(a["step"]) == float(b["step"]) == 6


def test_flat_parameters_are_views_and_clip_like_torch():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    ref = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    ref.load_state_dict(net.state_dict())
    flat = FlatParameters(net)
    x = torch.randn(5, 3)
    for _ in range(2):  # accumulates in place into the flat buffer, zeroed in place
        flat.zero_grad()
        (net(x) ** 2).sum().mul(10).backward()
    ref.zero_grad()
    (ref(x) ** 2).sum().mul(10).backward()
    for p, q in zip(net.parameters(), ref.parameters()):
        assert p.grad.untyped_storage().data_ptr() == flat.param.grad.untyped_storage().data_ptr()  # a view
        torch.testing.assert_close(p.grad, q.grad)
    norm = flat.clip_grad_norm(0.5)
    ref_norm = torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.5)
    torch.testing.assert_close(norm, ref_norm)
    torch.testing.assert_close(torch.cat([p.grad.reshape(-1) for p in net.parameters()]), flat.param.grad)
    opt = Adam([flat.param], lr=0.1)
    opt.step()  # updating the flat parameter updates the module's own parameters
    assert not torch.equal(net[0].weight, ref[0].weight)
    net.load_state_dict(ref.state_dict())  # loading writes through the views
    torch.testing.assert_close(flat.param.data, torch.cat([p.reshape(-1) for p in ref.parameters()]))




@pytest.mark.parametrize("flat", [True, False])
def test_a_step_along_given_gradients_is_the_step_on_the_loss_whether_they_come_apart_or_flat(flat):
    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)) for _ in range(3)]
    for net in nets[1:]:
        net.load_state_dict(nets[0].state_dict())
    steps = [OptimizerStep(net, 0.05, "rmsprop", max_grad_norm=0.3, flat=flat) for net in nets]
    start = [p.detach().clone() for p in nets[0].parameters()]
    x = torch.randn(6, 3)
    for _ in range(3):
        steps[0]((nets[0](x) ** 2).sum())  # on the loss
        grads = torch.autograd.grad((nets[1](x) ** 2).sum(), list(nets[1].parameters()))
        steps[1].apply(list(grads))  # given one per parameter
        grads = torch.autograd.grad((nets[2](x) ** 2).sum(), list(nets[2].parameters()))
        steps[2].apply(torch.cat([g.reshape(-1) for g in grads]))  # given flat
    for other in nets[1:]:
        for p, q in zip(nets[0].parameters(), other.parameters()):
            torch.testing.assert_close(p, q)
    assert all(not torch.equal(p, q) for p, q in zip(nets[0].parameters(), start))  # (the steps moved them)
