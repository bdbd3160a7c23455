"""The low-overhead Adam and gradient clipping against PyTorch's own."""

import torch

from ascent.optim import Adam, RMSprop, clip_grad_norm


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


def test_clip_grad_norm_matches_torch():
    a, b = make_params(2), make_params(2)
    for params in (a, b):
        (loss_of(params, 0) * 50).backward()
    norm = clip_grad_norm(a, 0.5)
    ref_norm = torch.nn.utils.clip_grad_norm_(b, 0.5)
    torch.testing.assert_close(norm, ref_norm)
    for x, y in zip(a, b):
        torch.testing.assert_close(x.grad, y.grad)


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
