"""The low-overhead Adam and gradient clipping against PyTorch's own."""

import torch



def test_conjugate_gradient_matches_direct_solve():
    from ascent.nets.natural_gradient import conjugate_gradient

    g = torch.Generator().manual_seed(0)
    m = torch.randn(8, 8, generator=g, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(8, dtype=torch.float64)  # symmetric positive definite
    b = torch.randn(8, generator=g, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iters=50)
    torch.testing.assert_close(x, torch.linalg.solve(a, b))


def test_fisher_vector_product_is_hessian_of_mean_kl():
    """Against the explicit Hessian of the mean KL at theta_old on a tiny categorical policy."""
    from torch.func import functional_call

    from ascent.nets.distributions import Categorical
    from ascent.nets.natural_gradient import fisher_vector_product

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 3)).double()
    x = torch.randn(6, 2, dtype=torch.float64)
    params = list(net.parameters())
    names = [n for n, _ in net.named_parameters()]
    with torch.no_grad():
        old = Categorical(net(x))

    def mean_kl_of(flat):
        chunks, i = {}, 0
        for n, p in zip(names, params):
            chunks[n] = flat[i:i + p.numel()].view_as(p)
            i += p.numel()
        return old.kl(Categorical(functional_call(net, chunks, (x,)))).mean()

    theta = torch.cat([p.detach().reshape(-1) for p in params])
    hessian = torch.autograd.functional.hessian(mean_kl_of, theta)
    fvp = fisher_vector_product(old.kl(Categorical(net(x))).mean(), params, damping=0.1)
    v = torch.randn(theta.numel(), dtype=torch.float64)
    torch.testing.assert_close(fvp(v), hessian @ v + 0.1 * v)
    torch.testing.assert_close(fvp(2 * v), 2 * (hessian @ v + 0.1 * v))  # reusable, as CG needs


def test_line_search_rejects_steps_that_break_the_kl_bound():
    from ascent.nets.natural_gradient import backtracking_line_search

    full = torch.tensor([1.0, 0.0])
    # KL grows with the square of the step, improvement linearly: only fractions <= 1/4 keep KL <= 0.01.
    evaluate = lambda step: (float(step[0]), float(step[0]) ** 2 * 0.16)  # noqa: E731
    step, fraction, improve, kl = backtracking_line_search(evaluate, full, expected_improve=1.0, max_kl=0.01)
    assert step is not None and kl <= 0.01 and fraction == 0.25
    # a surrogate that never improves: every step rejected
    step, *_ = backtracking_line_search(lambda s: (-1.0, 0.0), full, expected_improve=1.0, max_kl=0.01)
    assert step is None
