"""Optimization helpers shared by algorithms: low-overhead Adam and RMSprop, flat parameter and
gradient buffers with global gradient clipping.

All are thin layers over PyTorch's own kernels. For the small networks of classic RL, the Python
bookkeeping around a step (grouping tensors by device, hooks, per-parameter checks) costs more than
the arithmetic; these keep the arithmetic and drop the bookkeeping.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
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
                # (on the parameters' device: the fused CUDA kernel reads it there)
                step = torch.tensor(float(old[0]) if old else 0.0, dtype=torch.float32, device=params[0].device)
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
                f"ascent.nets.optim.{type(self).__name__} steps all parameters of a group together; a parameter got "
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

    def reset_state(self) -> None:
        """Forget the moments and the step count: the next step is a fresh optimizer's first."""
        self.state.clear()
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

    def __init__(self, module: torch.nn.Module | Iterable[torch.nn.Parameter]):
        params = list(module.parameters() if isinstance(module, torch.nn.Module) else module)
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

    def numpy(self) -> np.ndarray:
        """A host copy of the parameters as one array (what travels to another process)."""
        return self.param.detach().cpu().numpy().copy()

    def clip_grad_norm(self, max_norm: float) -> torch.Tensor:
        """Scale the gradient to global L2 norm <= max_norm; returns the norm before."""
        total = torch.linalg.vector_norm(self.param.grad)
        if total.device.type != "cpu":  # scale by min(1, max_norm / norm) on the device: no sync with the host
            self.param.grad.mul_((max_norm / (total + 1e-6)).clamp(max=1.0))
        elif total > max_norm:  # (a CPU scalar: no device sync) most steps need no scaling at all
            self.param.grad.mul_(max_norm / (total + 1e-6))
        return total


class OptimizerStep:
    """The one way an algorithm takes a gradient step: `step(loss)` zeroes the gradients,
    backpropagates into these parameters only (others' gradients are not computed), clips the
    global gradient norm when `max_grad_norm` is set, and steps the optimizer.

    With `flat` (the default) the parameters become views into one buffer (FlatParameters), so the
    norm, the clip and Adam/RMSprop are one operation each; `flat=False` keeps them apart (for
    parameter lists whose optimizer state is stored per parameter). `optimizer`: "adam" or
    "rmsprop" (no momentum, not centered). The learning rate is `lr`, settable for schedules.
    """

    def __init__(self, params: torch.nn.Module | Iterable[torch.nn.Parameter], lr: float, optimizer: str = "adam",
                 eps: float = 1e-8, max_grad_norm: float | None = None, alpha: float = 0.99, flat: bool = True):
        self.flat = FlatParameters(params) if flat else None
        self.params = list(params.parameters() if isinstance(params, torch.nn.Module) else params)
        stepped = [self.flat.param] if flat else self.params
        if optimizer == "adam":
            self.optimizer: torch.optim.Optimizer = Adam(stepped, lr=lr, eps=eps)
        elif optimizer == "rmsprop":
            self.optimizer = RMSprop(stepped, lr=lr, alpha=alpha, eps=eps)
        else:
            raise ValueError(f"unknown optimizer {optimizer!r} (adam, rmsprop)")
        self.max_grad_norm = max_grad_norm

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = value

    def apply(self, gradients: list[torch.Tensor] | torch.Tensor) -> None:
        """A step along given gradients (one per parameter, in `params` order, or one flat tensor of
        them all: computed elsewhere, as a distributed algorithm's workers do), clipped like a loss's."""
        flat = isinstance(gradients, torch.Tensor)
        if flat and self.flat is None:
            gradients = list(torch.split(gradients, [p.numel() for p in self.params]))
        if self.flat is not None:  # (in place: the views stay)
            self.flat.param.grad.copy_(gradients if flat else torch.cat([g.reshape(-1) for g in gradients]))
            if self.max_grad_norm is not None:
                self.flat.clip_grad_norm(self.max_grad_norm)
        else:
            for p, g in zip(self.params, gradients):
                p.grad = g.to(p.device, p.dtype).reshape(p.shape).clone()
            if self.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()

    def __call__(self, loss: torch.Tensor) -> None:
        if self.flat is not None:
            self.flat.zero_grad()
        else:
            self.optimizer.zero_grad()
        loss.backward(inputs=self.params)
        if self.max_grad_norm is not None:
            if self.flat is not None:
                self.flat.clip_grad_norm(self.max_grad_norm)
            else:
                torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()


@torch.no_grad()
def polyak_update(target: list[torch.Tensor], source: list[torch.Tensor], tau: float) -> None:
    """target <- (1 - tau) target + tau source, for every tensor at once (one fused foreach call)."""
    torch._foreach_lerp_(target, source, tau)
