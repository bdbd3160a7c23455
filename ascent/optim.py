"""Optimization helpers shared by algorithms: low-overhead Adam and RMSprop, flat parameter and
gradient buffers with global gradient clipping.

All are thin layers over PyTorch's own kernels. For the small networks of classic RL, the Python
bookkeeping around a step (grouping tensors by device, hooks, per-parameter checks) costs more than
the arithmetic; these keep the arithmetic and drop the bookkeeping.
"""

from __future__ import annotations

from typing import Iterable

import torch


class _LeanStep:
    """What the lean optimizers share: per-parameter state created once and cached as tensor lists,
    one step counter per parameter group (its parameters always step together), zero_grad by
    dropping the gradients, and a cache reset when a checkpoint is loaded."""

    _state_keys: tuple[str, ...] = ()

    def _state_lists(self) -> list:
        if self._cache is None:
            cache = []
            for group in self.param_groups:
                params = list(group["params"])
                old = [self.state[p]["step"] for p in params if self.state[p]]
                step = torch.tensor(float(old[0]) if old else 0.0, dtype=torch.float32)
                for p in params:
                    st = self.state[p]
                    for key in self._state_keys:  # lazy initialization, as torch's optimizers do
                        if key not in st:
                            st[key] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    st["step"] = step
                states = [[self.state[p][key] for p in params] for key in self._state_keys]
                cache.append((group, params, states, step))
            self._cache = cache
        return self._cache

    def _grads(self, params: list[torch.Tensor]) -> list[torch.Tensor]:
        grads = [p.grad for p in params]
        if any(g is None for g in grads):
            raise RuntimeError(
                f"ascent.optim.{type(self).__name__} steps all parameters of a group together; a parameter got "
                "no gradient (use one optimizer per set of parameters that is updated together)"
            )
        return grads

    def _patch_step_function(self) -> None:
        """No profiler/hook wrapper around step(): it cost ~80 us a call, more than the fused kernel
        (these optimizers do not support step hooks)."""

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def load_state_dict(self, state_dict) -> None:
        super().load_state_dict(state_dict)
        self._cache = None


class Adam(_LeanStep, torch.optim.Adam):
    """torch.optim.Adam whose step calls the fused kernel directly on cached tensor lists.

    Same hyperparameters, same update (tested against torch.optim.Adam), same state_dict format.
    """

    _state_keys = ("exp_avg", "exp_avg_sq")

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, eps: float = 1e-8, betas=(0.9, 0.999)):
        torch.optim.Adam.__init__(self, params, lr=lr, eps=eps, betas=betas, fused=True)
        self._cache: list | None = None

    @torch.no_grad()
    def step(self, closure=None):
        assert closure is None, "closures are not supported"
        for group, params, (exp_avgs, exp_avg_sqs), step in self._state_lists():
            grads = self._grads(params)
            beta1, beta2 = group["betas"]
            step.add_(1)
            torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], [step] * len(params), amsgrad=False,
                               lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
                               eps=group["eps"], maximize=False, grad_scale=None, found_inf=None)


class RMSprop(_LeanStep, torch.optim.RMSprop):
    """torch.optim.RMSprop (no momentum, not centered) as a few foreach ops on cached tensor lists:
    v <- alpha v + (1 - alpha) g^2;  p <- p - lr g / (sqrt(v) + eps). Same state_dict format."""

    _state_keys = ("square_avg",)

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8):
        torch.optim.RMSprop.__init__(self, params, lr=lr, alpha=alpha, eps=eps, foreach=True)
        self._cache: list | None = None

    @torch.no_grad()
    def step(self, closure=None):
        assert closure is None, "closures are not supported"
        for group, params, (square_avgs,), step in self._state_lists():
            grads = self._grads(params)
            alpha = group["alpha"]
            step.add_(1)
            torch._foreach_mul_(square_avgs, alpha)
            torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - alpha)
            denom = torch._foreach_sqrt(square_avgs)
            torch._foreach_add_(denom, group["eps"])
            torch._foreach_addcdiv_(params, grads, denom, value=-group["lr"])


class FlatParameters:
    """A module's parameters and gradients as views into two flat buffers.

    Backward accumulates each parameter's gradient in place into its view (the gradients are zeroed
    in place, never set to None), so the global gradient norm, its clipping and the optimizer step
    each become one operation on one tensor instead of one per parameter (the trick behind DDP's
    gradient-as-bucket-view). The module keeps its ordinary parameters and state_dict; optimize
    `self.param` (whose `.grad` is the flat gradient) instead of `module.parameters()`.
    """

    def __init__(self, module: torch.nn.Module):
        params = list(module.parameters())
        self.param = torch.nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
        self.param.grad = torch.zeros_like(self.param)
        offset = 0
        for p in params:
            n = p.numel()
            p.data = self.param.data[offset:offset + n].view_as(p)
            p.grad = self.param.grad[offset:offset + n].view_as(p)
            offset += n

    def zero_grad(self) -> None:
        self.param.grad.zero_()

    def clip_grad_norm(self, max_norm: float) -> torch.Tensor:
        """Scale the gradient to global L2 norm <= max_norm; returns the norm before."""
        total = torch.linalg.vector_norm(self.param.grad)
        if total > max_norm:  # (a CPU scalar: no device sync) most steps need no scaling at all
            self.param.grad.mul_(max_norm / (total + 1e-6))
        return total


# ---- second-order helpers for the natural policy gradient and TRPO ------------------------------------
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


@torch.no_grad()
def polyak_update(target: list[torch.Tensor], source: list[torch.Tensor], tau: float) -> None:
    """target <- (1 - tau) target + tau source, for every tensor at once (one fused foreach call)."""
    torch._foreach_lerp_(target, source, tau)
