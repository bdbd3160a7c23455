"""Second-order tools of the natural policy gradient and TRPO: flat gradients, Fisher-vector
products by double backprop, conjugate gradient, and the backtracking line search."""

from __future__ import annotations

import torch


def flat_grad(output: torch.Tensor, params: list[torch.Tensor], create_graph: bool = False,
              retain_graph: bool | None = None) -> torch.Tensor:
    """d output / d params as one flat vector (zeros for parameters output does not depend on)."""
    grads = torch.autograd.grad(output, params, create_graph=create_graph, retain_graph=retain_graph,
                                allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)])


def fisher_vector_product(mean_kl: torch.Tensor, params: list[torch.Tensor], damping: float = 0.0):
    """v -> (F + damping I) v without forming F, by double backprop of the mean KL.

    At theta = theta_old the Hessian of E_s[KL(pi_old(.|s) || pi_theta(.|s))] is the Fisher information
    matrix (Schulman et al. 2015, TRPO, appendix C): F v = grad((grad KL) . v). `mean_kl` must be
    built with pi_old detached and a graph through theta.
    """
    grad_kl = flat_grad(mean_kl, params, create_graph=True)

    def product(v: torch.Tensor) -> torch.Tensor:
        # the graph of grad_kl is kept: conjugate gradient asks for several products
        return flat_grad(grad_kl @ v, params, retain_graph=True) + damping * v

    return product


def conjugate_gradient(matvec, b: torch.Tensor, iters: int = 10, tol: float = 1e-10) -> torch.Tensor:
    """Approximately solve A x = b for symmetric positive-definite A given only x -> A x
    (Hestenes & Stiefel 1952; Nocedal & Wright alg. 5.2), from x = 0."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for _ in range(iters):
        if rr <= tol:
            break
        Ap = matvec(p)
        alpha = rr / (p @ Ap)
        x += alpha * p
        r -= alpha * Ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def backtracking_line_search(evaluate, full_step: torch.Tensor, expected_improve: float, max_kl: float,
                             max_backtracks: int = 10, accept_ratio: float = 0.1, shrink: float = 0.5):
    """Try step fractions 1, shrink, shrink^2, ...: accept the first whose sampled mean KL <= max_kl and
    whose surrogate improves by a positive amount at least accept_ratio times the linear prediction
    (TRPO, section 6). `evaluate(step)` returns (surrogate improvement, mean KL) at theta_old + step.
    Returns (accepted step or None, fraction tried last, improvement, KL)."""
    fraction, improve, kl = 1.0, 0.0, 0.0
    for _ in range(max_backtracks):
        step = fraction * full_step
        improve, kl = evaluate(step)
        if kl <= max_kl and improve > 0 and improve >= accept_ratio * fraction * expected_improve:
            return step, fraction, improve, kl
        fraction *= shrink
    return None, fraction, improve, kl
