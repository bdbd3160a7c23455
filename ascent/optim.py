"""Optimization helpers shared by algorithms: a low-overhead Adam and global gradient clipping.

Both are thin layers over PyTorch's own kernels. For the small networks of classic RL, the Python
bookkeeping around a step (grouping tensors by device, hooks, per-parameter checks) costs more than
the arithmetic; these keep the arithmetic and drop the bookkeeping.
"""

from __future__ import annotations

from typing import Iterable

import torch


class Adam(torch.optim.Adam):
    """torch.optim.Adam whose step calls the fused CPU/GPU kernel directly on cached tensor lists.

    Same hyperparameters, same update (tested against torch.optim.Adam), same state_dict format.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, eps: float = 1e-8, betas=(0.9, 0.999)):
        super().__init__(params, lr=lr, eps=eps, betas=betas, fused=True)
        self._cache: list | None = None

    def _state_lists(self):
        if self._cache is None:
            cache = []
            for group in self.param_groups:
                params = [p for p in group["params"]]
                # The parameters of a group always step together, so they share one step counter
                # (one increment per step instead of one per parameter).
                old = [self.state[p]["step"] for p in params if self.state[p]]
                step = torch.tensor(float(old[0]) if old else 0.0, dtype=torch.float32)
                for p in params:
                    st = self.state[p]
                    if not st:  # lazy state initialization, as torch.optim.Adam does
                        st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                        st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    st["step"] = step
                cache.append((group, params, [self.state[p]["exp_avg"] for p in params],
                              [self.state[p]["exp_avg_sq"] for p in params], step))
            self._cache = cache
        return self._cache

    @torch.no_grad()
    def step(self, closure=None):
        assert closure is None, "closures are not supported"
        for group, params, exp_avgs, exp_avg_sqs, step in self._state_lists():
            grads = [p.grad for p in params]
            if any(g is None for g in grads):
                raise RuntimeError(
                    "ascent.optim.Adam steps all parameters of a group together; a parameter got no gradient "
                    "(use one optimizer per set of parameters that is updated together)"
                )
            if not params:
                continue
            beta1, beta2 = group["betas"]
            step.add_(1)
            torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], [step] * len(params), amsgrad=False,
                               lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
                               eps=group["eps"], maximize=False, grad_scale=None, found_inf=None)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def load_state_dict(self, state_dict) -> None:
        super().load_state_dict(state_dict)
        self._cache = None


def clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale gradients so that their global L2 norm is at most max_norm; returns the norm before."""
    grads = [p.grad for p in params if p.grad is not None]
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, (max_norm / (total + 1e-6)).clamp_(max=1.0))
    return total
