"""Update rules and answers written the way other courses and textbooks teach them, put through the
assignments' API without changing their math, and typical mistakes.

Each :class:`Variant` replaces one name of the reference answers; ``expect`` is None for an answer the
assignment accepts (it must keep every point) or the phrases every failing check's message must
contain (the cause). ``tests/autograder/test_conventions.py`` runs every variant through the real
hidden checks. Sources are the conventions, not copies: CS231n (assignment 2 optim.py and the
notes), d2l.ai, UvA DL tutorials, TUM I2DL, "Deep Learning from Scratch" (Saito), ML-From-Scratch
(Lindernoren), Stanford CS336 (AdamW), Keras/TensorFlow defaults, Kingma & Ba, Reddi et al.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Variant:
    assignment: str
    task: str  # the graded task
    name: str  # the answer it replaces
    label: str
    value: object
    expect: tuple[str, ...] | None  # None: correct, full marks
    source: str = ""


VARIANTS: list[Variant] = []


def variant(assignment, task, label, expect=None, source="", name=None):
    if isinstance(expect, str):
        expect = (expect,)

    def register(value):
        VARIANTS.append(Variant(assignment, task, name or task, label, value, expect, source))
        return value

    return register


def _a2(task, label, expect=None, source="", name=None):
    return variant("02_optimizers", task, label, expect, source, name)


def _a1(task, name, label, expect=None, source=""):
    return variant("01_pytorch_basics", task, label, expect, source, name)


# ================================ assignment 2: optimizers ======================================
@_a2("sgd", "sgd_returns_param", source="functional style: update and return")
def _(param, grad, state, *, lr):
    param.sub_(lr * grad)
    return param


@_a2("sgd", "sgd_data_and_return", source="CS231n sgd: returns next_w")
def _(param, grad, state, *, lr):
    param.data = param.data - lr * grad
    return param.data, state


@_a2("sgd", "sgd_uphill", "uphill")
def _(param, grad, state, *, lr):
    param.add_(lr * grad)


@_a2("sgd", "sgd_hard_coded_lr", "ignores the learning rate")
def _(param, grad, state, *, lr):
    param.sub_(0.01 * grad)


# --- momentum
@_a2("momentum", "momentum_cs231n_returns", source="CS231n sgd_momentum / Saito Momentum: v = mu v - lr dw; w += v")
def _(param, grad, state, *, lr, mu=0.9):
    v = state.get("velocity", torch.zeros_like(param))
    v = mu * v - lr * grad
    state["velocity"] = v
    param += v
    return param, state


@_a2("momentum", "momentum_d2l_buffer", "PyTorch's form", source="d2l sgd_momentum: v = beta v + g; w -= lr v")
def _(param, grad, state, *, lr, mu=0.9):
    if "velocity" not in state:
        state["velocity"] = torch.zeros_like(param)
    state["velocity"][:] = mu * state["velocity"] + grad
    param[:] -= lr * state["velocity"]


@_a2("momentum", "momentum_uva_dampened", "dampened",
     source="UvA DL tutorial 4 SGDMomentum: mom = (1 - momentum) g + momentum mom")
def _(param, grad, state, *, lr, mu=0.9):
    mom = state.setdefault("velocity", torch.zeros_like(param))
    mom.copy_((1 - mu) * grad + mu * mom)
    param.add_(-lr * mom)


@_a2("momentum", "momentum_mlfromscratch", "dampened",
     source="ML-From-Scratch StochasticGradientDescent: w_updt = m w_updt + (1 - m) g; return w - lr w_updt")
def _(param, grad, state, *, lr, mu=0.9):
    w_updt = state.get("velocity")
    if w_updt is None:
        w_updt = torch.zeros_like(param)
    w_updt = mu * w_updt + (1 - mu) * grad
    state["velocity"] = w_updt
    new = param - lr * w_updt
    param.copy_(new)
    return new


@_a2("momentum", "momentum_hard_coded_mu", "ignores the mu")
def _(param, grad, state, *, lr, mu=0.9):
    v = state.setdefault("velocity", torch.zeros_like(param))
    v.mul_(0.9).sub_(lr * grad)
    param.add_(v)


@_a2("momentum", "momentum_default_changed", "mu defaults to 0.99")
def _(param, grad, state, *, lr, mu=0.99):
    v = state.setdefault("velocity", torch.zeros_like(param))
    v.mul_(mu).sub_(lr * grad)
    param.add_(v)


@_a2("momentum", "momentum_state_reset", "re-created at every step")
def _(param, grad, state, *, lr, mu=0.9):
    state["velocity"] = torch.zeros_like(param)
    v = state["velocity"]
    v.mul_(mu).sub_(lr * grad)
    param.add_(v)


# --- nesterov
@_a2("nesterov", "nesterov_cs231n_form", source="CS231n notes: x += -mu v_prev + (1 + mu) v (equivalent)")
def _(param, grad, state, *, lr, mu=0.9):
    v = state.setdefault("velocity", torch.zeros_like(param))
    v_prev = v.clone()
    v.mul_(mu).sub_(lr * grad)
    param.add_(-mu * v_prev + (1 + mu) * v)
    return param


@_a2("nesterov", "nesterov_pytorch_form", "PyTorch's form", source="torch.optim.SGD(nesterov=True)")
def _(param, grad, state, *, lr, mu=0.9):
    buf = state.setdefault("velocity", torch.zeros_like(param))
    buf.mul_(mu).add_(grad)
    param.sub_(lr * (grad + mu * buf))


@_a2("nesterov", "nesterov_old_velocity", "plain momentum", source="look-ahead taken with the old velocity")
def _(param, grad, state, *, lr, mu=0.9):
    v = state.setdefault("velocity", torch.zeros_like(param))
    param.add_(mu * v - lr * grad)
    v.mul_(mu).sub_(lr * grad)


@_a2("nesterov", "nesterov_saito", "mu^2 v - (1 + mu) lr g", source="Deep Learning from Scratch, Nesterov class")
def _(param, grad, state, *, lr, mu=0.9):
    v = state.setdefault("velocity", torch.zeros_like(param))
    v *= mu
    v -= lr * grad
    param += mu * mu * v
    param -= (1 + mu) * lr * grad


@_a2("nesterov", "nesterov_dampened", "dampened", source="torch SGD(nesterov=True, dampening=momentum) style")
def _(param, grad, state, *, lr, mu=0.9):
    buf = state.setdefault("velocity", torch.zeros_like(param))
    buf.mul_(mu).add_((1 - mu) * grad)
    param.sub_(lr * (grad + mu * buf))


@_a2("nesterov", "nesterov_hard_coded_mu", "ignores the mu")
def _(param, grad, state, *, lr, mu=0.9):
    v = state.setdefault("velocity", torch.zeros_like(param))
    v.mul_(0.9).sub_(lr * grad)
    param.add_(0.9 * v - lr * grad)


# --- adagrad
@_a2("adagrad", "adagrad_cs231n", source="CS231n notes: cache += dx**2; x -= lr dx / (sqrt(cache) + eps)")
def _(param, grad, state, *, lr, eps=1e-10):
    cache = state.setdefault("sum_sq", torch.zeros_like(param))
    cache += grad**2
    param -= lr * grad / (torch.sqrt(cache) + eps)
    return param


@_a2("adagrad", "adagrad_d2l", "eps is inside the square root", source="d2l adagrad: p -= lr g / sqrt(s + eps)")
def _(param, grad, state, *, lr, eps=1e-10):
    s = state.setdefault("sum_sq", torch.zeros_like(param))
    s[:] += torch.square(grad)
    param[:] -= lr * grad / torch.sqrt(s + eps)


@_a2("adagrad", "adagrad_saito", "ignores the eps", source="Deep Learning from Scratch AdaGrad: + 1e-7")
def _(param, grad, state, *, lr, eps=1e-10):
    h = state.setdefault("sum_sq", torch.zeros_like(param))
    h += grad * grad
    param -= lr * grad / (torch.sqrt(h) + 1e-7)


@_a2("adagrad", "adagrad_tf_initial_accumulator", "starts at 0.1", source="tf.keras Adagrad initial_accumulator_value=0.1")
def _(param, grad, state, *, lr, eps=1e-10):
    if "sum_sq" not in state:
        state["sum_sq"] = torch.full_like(param, 0.1)
    state["sum_sq"].addcmul_(grad, grad)
    param.addcdiv_(grad, state["sum_sq"].sqrt() + eps, value=-lr)


@_a2("adagrad", "adagrad_keras_default_eps", "eps defaults to 1e-07", source="tf.keras Adagrad epsilon=1e-7")
def _(param, grad, state, *, lr, eps=1e-7):
    s = state.setdefault("sum_sq", torch.zeros_like(param))
    s.addcmul_(grad, grad)
    param.addcdiv_(grad, s.sqrt().add(eps), value=-lr)


@_a2("adagrad", "adagrad_out_of_place_state", source="state replaced by a new tensor each step (fine)")
def _(param, grad, state, *, lr, eps=1e-10):
    state["sum_sq"] = state.get("sum_sq", torch.zeros_like(param)) + grad * grad
    param.sub_(lr * grad / (state["sum_sq"].sqrt() + eps))


@_a2("adagrad", "adagrad_mlfromscratch", "eps is inside the square root",
     source="ML-From-Scratch Adagrad: w - lr g / sqrt(G + eps)")
def _(param, grad, state, *, lr, eps=1e-10):
    G = state.get("sum_sq", torch.zeros_like(param))
    G = G + grad.pow(2)
    state["sum_sq"] = G
    new = param - lr * grad / torch.sqrt(G + eps)
    param.copy_(new)
    return new


# --- rmsprop
@_a2("rmsprop", "rmsprop_cs231n", source="CS231n rmsprop: cache = dr cache + (1 - dr) dx**2")
def _(param, grad, state, *, lr, rho=0.99, eps=1e-8):
    cache = state.get("avg_sq", torch.zeros_like(param))
    cache = rho * cache + (1 - rho) * grad**2
    state["avg_sq"] = cache
    param -= lr * grad / (torch.sqrt(cache) + eps)
    return param, state


@_a2("rmsprop", "rmsprop_d2l", "eps is inside the square root", source="d2l rmsprop: p -= lr g / sqrt(s + eps)")
def _(param, grad, state, *, lr, rho=0.99, eps=1e-8):
    s = state.setdefault("avg_sq", torch.zeros_like(param))
    s[:] = rho * s + (1 - rho) * torch.square(grad)
    param[:] -= lr * grad / torch.sqrt(s + eps)


@_a2("rmsprop", "rmsprop_saito", "ignores the eps", source="Deep Learning from Scratch RMSprop: + 1e-7")
def _(param, grad, state, *, lr, rho=0.99, eps=1e-8):
    h = state.setdefault("avg_sq", torch.zeros_like(param))
    h *= rho
    h += (1 - rho) * grad * grad
    param -= lr * grad / (torch.sqrt(h) + 1e-7)


@_a2("rmsprop", "rmsprop_hinton_rho", "ignores the rho", source="Hinton's lecture 6e: 0.9 MeanSquare + 0.1 g^2")
def _(param, grad, state, *, lr, rho=0.99, eps=1e-8):
    a = state.setdefault("avg_sq", torch.zeros_like(param))
    a.mul_(0.9).add_(0.1 * grad * grad)
    param.sub_(lr * grad / (a.sqrt() + eps))


@_a2("rmsprop", "rmsprop_centered", "centered", source="Graves 2013 / tf RMSprop(centered=True)")
def _(param, grad, state, *, lr, rho=0.99, eps=1e-8):
    a = state.setdefault("avg_sq", torch.zeros_like(param))
    g = state.setdefault("avg_grad", torch.zeros_like(param))
    a.mul_(rho).addcmul_(grad, grad, value=1 - rho)
    g.mul_(rho).add_(grad, alpha=1 - rho)
    param.addcdiv_(grad, (a - g * g).sqrt().add_(eps), value=-lr)


@_a2("rmsprop", "rmsprop_rho_swapped", "swapped")
def _(param, grad, state, *, lr, rho=0.99, eps=1e-8):
    a = state.setdefault("avg_sq", torch.zeros_like(param))
    a.copy_((1 - rho) * a + rho * grad * grad)
    param.addcdiv_(grad, a.sqrt() + eps, value=-lr)


@_a2("rmsprop", "rmsprop_keras_default_rho", "rho defaults to 0.9", source="tf.keras RMSprop rho=0.9")
def _(param, grad, state, *, lr, rho=0.9, eps=1e-8):
    a = state.setdefault("avg_sq", torch.zeros_like(param))
    a.mul_(rho).addcmul_(grad, grad, value=1 - rho)
    param.addcdiv_(grad, a.sqrt() + eps, value=-lr)


# --- adam
@_a2("adam", "adam_cs231n_assignment", source="CS231n optim.adam: t += 1, mt = m / (1 - b1**t), ...")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    if not state:
        state.update(step=0, m=torch.zeros_like(param), v=torch.zeros_like(param))
    state["step"] += 1
    t = state["step"]
    state["m"] = beta1 * state["m"] + (1 - beta1) * grad
    mt = state["m"] / (1 - beta1**t)
    state["v"] = beta2 * state["v"] + (1 - beta2) * (grad**2)
    vt = state["v"] / (1 - beta2**t)
    param -= lr * mt / (torch.sqrt(vt) + eps)
    return param, state


@_a2("adam", "adam_d2l_counter_after", source="d2l adam: t used, then hyperparams['t'] += 1 (t starts at 1)")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    if "step" not in state:
        state.update(step=0, m=torch.zeros_like(param), v=torch.zeros_like(param))
    t = state["step"] + 1
    v, s = state["m"], state["v"]
    v[:] = beta1 * v + (1 - beta1) * grad
    s[:] = beta2 * s + (1 - beta2) * torch.square(grad)
    v_bias_corr = v / (1 - beta1**t)
    s_bias_corr = s / (1 - beta2**t)
    param[:] -= lr * v_bias_corr / (torch.sqrt(s_bias_corr) + eps)
    state["step"] = t


@_a2("adam", "adam_cs231n_notes_no_correction", "bias correction is missing",
     source="CS231n notes, Adam without bias correction")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    if "step" not in state:
        state.update(step=0, m=torch.zeros_like(param), v=torch.zeros_like(param))
    state["step"] += 1
    state["m"].mul_(beta1).add_((1 - beta1) * grad)
    state["v"].mul_(beta2).add_((1 - beta2) * grad**2)
    param.sub_(lr * state["m"] / (state["v"].sqrt() + eps))


@_a2("adam", "adam_saito", ("ignores the eps", "efficient"),
     source="Deep Learning from Scratch Adam: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); + 1e-7")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    if "step" not in state:
        state.update(step=0, m=torch.zeros_like(param), v=torch.zeros_like(param))
    state["step"] += 1
    t = state["step"]
    lr_t = lr * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
    state["m"] += (1 - beta1) * (grad - state["m"])
    state["v"] += (1 - beta2) * (grad**2 - state["v"])
    param -= lr_t * state["m"] / (torch.sqrt(state["v"]) + 1e-7)


@_a2("adam", "adam_kingma_efficient", "efficient", source="Kingma & Ba, section 2: the 'efficient' order")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    if "step" not in state:
        state.update(step=0, m=torch.zeros_like(param), v=torch.zeros_like(param))
    state["step"] += 1
    t = state["step"]
    state["m"].mul_(beta1).add_(grad, alpha=1 - beta1)
    state["v"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    alpha_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
    param.addcdiv_(state["m"], state["v"].sqrt().add(eps), value=-alpha_t)


@_a2("adam", "adam_efficient_with_corrected_eps", source="Kingma & Ba's efficient form with eps_hat = eps sqrt(1 - b2^t)")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    if "step" not in state:
        state.update(step=0, m=torch.zeros_like(param), v=torch.zeros_like(param))
    state["step"] += 1
    t = state["step"]
    state["m"].mul_(beta1).add_(grad, alpha=1 - beta1)
    state["v"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    c2 = math.sqrt(1 - beta2**t)
    param.addcdiv_(state["m"], state["v"].sqrt().add(eps * c2), value=-lr * c2 / (1 - beta1**t))


@_a2("adam", "adam_mlfromscratch", "1 - beta, not 1 - beta^t", source="ML-From-Scratch Adam: m / (1 - b1)")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    if "m" not in state:
        state.update(step=0, m=torch.zeros_like(param), v=torch.zeros_like(param))
    state["step"] += 1
    state["m"] = beta1 * state["m"] + (1 - beta1) * grad
    state["v"] = beta2 * state["v"] + (1 - beta2) * grad.pow(2)
    m_hat = state["m"] / (1 - beta1)
    v_hat = state["v"] / (1 - beta2)
    update = lr * m_hat / (torch.sqrt(v_hat) + eps)
    param.copy_(param - update)
    return param


@_a2("adam", "adam_only_m_corrected", "only m is bias-corrected")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    if "step" not in state:
        state.update(step=0, m=torch.zeros_like(param), v=torch.zeros_like(param))
    state["step"] += 1
    t = state["step"]
    state["m"].mul_(beta1).add_(grad, alpha=1 - beta1)
    state["v"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    param.addcdiv_(state["m"] / (1 - beta1**t), state["v"].sqrt() + eps, value=-lr)


@_a2("adam", "adam_only_v_corrected", "only v is bias-corrected")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    if "step" not in state:
        state.update(step=0, m=torch.zeros_like(param), v=torch.zeros_like(param))
    state["step"] += 1
    t = state["step"]
    state["m"].mul_(beta1).add_(grad, alpha=1 - beta1)
    state["v"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    param.addcdiv_(state["m"], (state["v"] / (1 - beta2**t)).sqrt() + eps, value=-lr)


@_a2("adam", "adam_counter_ahead_params_right", "ahead by 1", source="CS336-style counter: t = state.get(..., 1), stored t + 1")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    t = state.get("step", 1)
    m = state.get("m", torch.zeros_like(param))
    v = state.get("v", torch.zeros_like(param))
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    param.sub_(lr * (m / (1 - beta1**t)) / ((v / (1 - beta2**t)).sqrt() + eps))
    state.update(step=t + 1, m=m, v=v)


@_a2("adam", "adam_counter_behind_params_right", "behind by 1", source="own counter in state['t'], step keeps the old count")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    if "m" not in state:
        state.update(t=0, m=torch.zeros_like(param), v=torch.zeros_like(param))
    state["step"] = state["t"]
    state["t"] += 1
    t = state["t"]
    state["m"].mul_(beta1).add_(grad, alpha=1 - beta1)
    state["v"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    param.addcdiv_(state["m"] / (1 - beta1**t), (state["v"] / (1 - beta2**t)).sqrt() + eps, value=-lr)


@_a2("adam", "adam_hard_coded_betas", ("ignores the beta1", "ignores the beta2"))
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    if "step" not in state:
        state.update(step=0, m=torch.zeros_like(param), v=torch.zeros_like(param))
    state["step"] += 1
    t = state["step"]
    state["m"].mul_(0.9).add_(grad, alpha=0.1)
    state["v"].mul_(0.999).addcmul_(grad, grad, value=0.001)
    param.addcdiv_(state["m"] / (1 - 0.9**t), (state["v"] / (1 - 0.999**t)).sqrt() + eps, value=-lr)


@_a2("adam", "adam_keras_default_eps", "eps defaults to 1e-07", source="tf.keras Adam epsilon=1e-7")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-7):
    if "step" not in state:
        state.update(step=0, m=torch.zeros_like(param), v=torch.zeros_like(param))
    state["step"] += 1
    t = state["step"]
    state["m"].mul_(beta1).add_(grad, alpha=1 - beta1)
    state["v"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    param.addcdiv_(state["m"] / (1 - beta1**t), (state["v"] / (1 - beta2**t)).sqrt() + eps, value=-lr)


@_a2("adam", "adam_tensor_counter", source="torch.optim style: state['step'] a float tensor")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    if "step" not in state:
        state.update(step=torch.tensor(0.0), m=torch.zeros_like(param), v=torch.zeros_like(param))
    state["step"] += 1
    t = state["step"].item()
    state["m"].lerp_(grad, 1 - beta1)
    state["v"].mul_(beta2).addcmul_(grad, grad.conj(), value=1 - beta2)
    denom = (state["v"].sqrt() / math.sqrt(1 - beta2**t)).add_(eps)
    param.addcdiv_(state["m"], denom, value=-lr / (1 - beta1**t))


@_a2("adam", "adam_eps_inside", "eps is inside the square root")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    if "step" not in state:
        state.update(step=0, m=torch.zeros_like(param), v=torch.zeros_like(param))
    state["step"] += 1
    t = state["step"]
    state["m"].mul_(beta1).add_(grad, alpha=1 - beta1)
    state["v"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    param.addcdiv_(state["m"] / (1 - beta1**t), (state["v"] / (1 - beta2**t) + eps).sqrt(), value=-lr)


# --- adamw
def _moments(param, grad, state, beta1, beta2):
    if "step" not in state:
        state.update(step=0, m=torch.zeros_like(param), v=torch.zeros_like(param))
    state["step"] += 1
    state["m"].mul_(beta1).add_(grad, alpha=1 - beta1)
    state["v"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    return state["step"], state["m"], state["v"]


@_a2("adamw", "adamw_cs336", ("efficient", "after the Adam step"),
     source="CS336 AdamW: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t), decay after, t from state.get('t', 1)")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
    t = state.get("step", 1)
    m = state.get("m", torch.zeros_like(param))
    v = state.get("v", torch.zeros_like(param))
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    lr_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
    param.data -= lr_t * m / (torch.sqrt(v) + eps)
    param.data -= lr * weight_decay * param.data
    state.update(step=t + 1, m=m, v=v)


@_a2("adamw", "adamw_paper_no_lr", "not multiplied by lr", source="Loshchilov & Hutter Alg. 2: theta -= eta (... + lambda theta)")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
    t, m, v = _moments(param, grad, state, beta1, beta2)
    param.mul_(1 - weight_decay)
    param.addcdiv_(m / (1 - beta1**t), (v / (1 - beta2**t)).sqrt() + eps, value=-lr)


@_a2("adamw", "adamw_as_l2", "added to the gradient")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
    grad = grad + weight_decay * param
    t, m, v = _moments(param, grad, state, beta1, beta2)
    param.addcdiv_(m / (1 - beta1**t), (v / (1 - beta2**t)).sqrt() + eps, value=-lr)


@_a2("adamw", "adamw_decay_after", "after the Adam step")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
    t, m, v = _moments(param, grad, state, beta1, beta2)
    param.addcdiv_(m / (1 - beta1**t), (v / (1 - beta2**t)).sqrt() + eps, value=-lr)
    param.mul_(1 - lr * weight_decay)


@_a2("adamw", "adamw_hard_coded_decay", "ignores the weight_decay")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
    param.mul_(1 - lr * 0.01)
    t, m, v = _moments(param, grad, state, beta1, beta2)
    param.addcdiv_(m / (1 - beta1**t), (v / (1 - beta2**t)).sqrt() + eps, value=-lr)


@_a2("adamw", "adamw_add_before", source="torch.optim.AdamW order, written with add_")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
    param.add_(param, alpha=-lr * weight_decay)
    t, m, v = _moments(param, grad, state, beta1, beta2)
    param.addcdiv_(m / (1 - beta1**t), (v / (1 - beta2**t)).sqrt() + eps, value=-lr)
    return param


@_a2("adamw", "adamw_default_zero_decay", "weight_decay defaults to 0.0")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    param.mul_(1 - lr * weight_decay)
    t, m, v = _moments(param, grad, state, beta1, beta2)
    param.addcdiv_(m / (1 - beta1**t), (v / (1 - beta2**t)).sqrt() + eps, value=-lr)


# --- amsgrad
def _amsgrad_state(param, grad, state, beta1, beta2):
    t, m, v = _moments(param, grad, state, beta1, beta2)
    state.setdefault("v_max", torch.zeros_like(param))
    return t, m, v


@_a2("amsgrad", "amsgrad_max_of_v_hat", "bias-corrected v_hat")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    t, m, v = _amsgrad_state(param, grad, state, beta1, beta2)
    state["v_max"] = torch.maximum(state["v_max"], v / (1 - beta2**t))
    param.addcdiv_(m / (1 - beta1**t), state["v_max"].sqrt() + eps, value=-lr)


@_a2("amsgrad", "amsgrad_reddi", "Reddi et al.'s algorithm has none", source="Reddi et al. Alg. 2 (no bias correction)")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    t, m, v = _amsgrad_state(param, grad, state, beta1, beta2)
    torch.maximum(state["v_max"], v, out=state["v_max"])
    param.addcdiv_(m, state["v_max"].sqrt() + eps, value=-lr)


@_a2("amsgrad", "amsgrad_plain_adam", "plain Adam")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    t, m, v = _amsgrad_state(param, grad, state, beta1, beta2)
    state["v_max"] = torch.maximum(state["v_max"], v)
    param.addcdiv_(m / (1 - beta1**t), (v / (1 - beta2**t)).sqrt() + eps, value=-lr)


@_a2("amsgrad", "amsgrad_pytorch_style", source="torch.optim.Adam(amsgrad=True) written out")
def _(param, grad, state, *, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    t, m, v = _amsgrad_state(param, grad, state, beta1, beta2)
    torch.maximum(state["v_max"], v, out=state["v_max"])
    denom = (state["v_max"].sqrt() / math.sqrt(1 - beta2**t)).add_(eps)
    param.addcdiv_(m, denom, value=-lr / (1 - beta1**t))
    return param


# --- schedule and search
@_a2("linear_decay", "linear_decay_default_changed", "final_fraction defaults to 0.1")
def _(step, lr0, tau, final_fraction=0.1):
    alpha = min(step, tau) / tau
    return (1 - alpha) * lr0 + alpha * final_fraction * lr0


@_a2("linear_decay", "linear_decay_torch_linearlr_form", source="LinearLR's factor form: lr0 * (1 + (f - 1) min(k, tau) / tau)")
def _(step, lr0, tau, final_fraction=0.01):
    return lr0 * (1 + (final_fraction - 1) * min(step, tau) / tau)


@_a2("search", "log_uniform_hard_coded_range", "public example's range", name="log_uniform")
def _(n, low, high, generator):
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    return 10 ** (-4 + 3 * u)


@_a2("search", "log_uniform_hard_coded_decades", "number of decades is hard-coded", name="log_uniform")
def _(n, low, high, generator):
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    return low * 10 ** (3 * u)


@_a2("search", "log_uniform_natural_log", source="exp(U(ln low, ln high)): the same distribution", name="log_uniform")
def _(n, low, high, generator):
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    return torch.exp(math.log(low) + u * (math.log(high) - math.log(low)))


@_a2("search", "log_uniform_ratio_power", source="low * (high / low) ** u", name="log_uniform")
def _(n, low, high, generator):
    return low * (high / low) ** torch.rand(n, generator=generator, dtype=torch.float64)


# ================================ assignment 1: PyTorch basics ===================================
# --- one_hot
@_a1("tensors", "one_hot", "one_hot_F_one_hot_float", source="F.one_hot(labels, num_classes).float()")
def _(labels, num_classes):
    return F.one_hot(labels, num_classes).float()


@_a1("tensors", "one_hot", "one_hot_eye_rows", source="torch.eye(num_classes)[labels]")
def _(labels, num_classes):
    return torch.eye(num_classes, device=labels.device)[labels]


@_a1("tensors", "one_hot", "one_hot_scatter", source="zeros.scatter_(1, labels[:, None], 1.0)")
def _(labels, num_classes):
    return torch.zeros(len(labels), num_classes, device=labels.device).scatter_(1, labels[:, None], 1.0)


@_a1("tensors", "one_hot", "one_hot_columns_from_labels", "the number of columns comes from the labels")
def _(labels, num_classes):
    out = torch.zeros(len(labels), int(labels.max()) + 1, device=labels.device)
    out[torch.arange(len(labels)), labels] = 1.0
    return out


@_a1("tensors", "one_hot", "one_hot_int64", "F.one_hot returns int64")
def _(labels, num_classes):
    return F.one_hot(labels, num_classes)


@_a1("tensors", "one_hot", "one_hot_float64", "create it with dtype=torch.float32")
def _(labels, num_classes):
    out = torch.zeros(len(labels), num_classes, dtype=torch.float64, device=labels.device)
    out[torch.arange(len(labels)), labels] = 1.0
    return out


@_a1("tensors", "one_hot", "one_hot_transposed", "the matrix is transposed")
def _(labels, num_classes):
    out = torch.zeros(num_classes, len(labels), device=labels.device)
    out[labels, torch.arange(len(labels))] = 1.0
    return out


# --- pairwise_sq_distances
@_a1("tensors", "pairwise_sq_distances", "pairwise_expansion", source="CS231n knn: |a|^2 - 2 a.b + |b|^2")
def _(a, b):
    return (a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None, :]


@_a1("tensors", "pairwise_sq_distances", "pairwise_cdist_squared", source="torch.cdist(a, b) ** 2")
def _(a, b):
    return torch.cdist(a, b) ** 2


@_a1("tensors", "pairwise_sq_distances", "pairwise_einsum", source="einsum over the difference")
def _(a, b):
    d = a[:, None] - b[None]
    return torch.einsum("nmd,nmd->nm", d, d)


@_a1("tensors", "pairwise_sq_distances", "pairwise_cdist", "square root was taken")
def _(a, b):
    return torch.cdist(a, b)


@_a1("tensors", "pairwise_sq_distances", "pairwise_mean_over_d", "averaged over the D coordinates")
def _(a, b):
    return ((a[:, None, :] - b[None, :, :]) ** 2).mean(dim=2)


@_a1("tensors", "pairwise_sq_distances", "pairwise_l1", "the L1 distance")
def _(a, b):
    return (a[:, None, :] - b[None, :, :]).abs().sum(dim=2)


@_a1("tensors", "pairwise_sq_distances", "pairwise_float32", "keep the inputs' dtype")
def _(a, b):
    a, b = a.float(), b.float()
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(dim=2)


@_a1("tensors", "pairwise_sq_distances", "pairwise_transposed", "the result is transposed")
def _(a, b):
    return ((b[:, None, :] - a[None, :, :]) ** 2).sum(dim=2)


# --- mean_std
@_a1("mean_std", "mean_std", "mean_std_welford", source="Welford / Chan's parallel update, per batch")
def _(loader):
    n, mean, m2 = 0, 0.0, 0.0
    for images, _ in loader:
        x = images.double().reshape(-1)
        nb, mb = x.numel(), x.mean().item()
        m2b = ((x - mb) ** 2).sum().item()
        delta = mb - mean
        total = n + nb
        mean += delta * nb / total
        m2 += m2b + delta**2 * n * nb / total
        n = total
    return mean, (m2 / n) ** 0.5


@_a1("mean_std", "mean_std", "mean_std_concatenate", source="torch.cat every batch, population std")
def _(loader):
    x = torch.cat([images.double().reshape(-1) for images, _ in loader])
    return x.mean().item(), x.std(correction=0).item()


@_a1("mean_std", "mean_std", "mean_std_two_pass", source="two passes: the mean, then the squared deviations")
def _(loader):
    total, count = 0.0, 0
    for images, _ in loader:
        total += images.double().sum().item()
        count += images.numel()
    mean = total / count
    sq = sum(((images.double() - mean) ** 2).sum().item() for images, _ in loader)
    return mean, (sq / count) ** 0.5


@_a1("mean_std", "mean_std", "mean_std_per_batch", "mean and std of each batch were averaged")
def _(loader):
    means, stds = [], []
    for images, _ in loader:
        means.append(images.double().mean().item())
        stds.append(images.double().std(correction=0).item())
    return sum(means) / len(means), sum(stds) / len(stds)


@_a1("mean_std", "mean_std", "mean_std_unbiased", "unbiased (N-1) std")
def _(loader):
    x = torch.cat([images.double().reshape(-1) for images, _ in loader])
    return x.mean().item(), x.std().item()


@_a1("mean_std", "mean_std", "mean_std_variance", "the variance was returned")
def _(loader):
    x = torch.cat([images.double().reshape(-1) for images, _ in loader])
    return x.mean().item(), x.var(correction=0).item()


@_a1("mean_std", "mean_std", "mean_std_per_image", "the std of each image was averaged")
def _(loader):
    x = torch.cat([images.double().reshape(len(images), -1) for images, _ in loader])
    return x.mean().item(), x.std(dim=1, correction=0).mean().item()


@_a1("mean_std", "mean_std", "mean_std_root_mean_square", "the root mean square was returned")
def _(loader):
    x = torch.cat([images.double().reshape(-1) for images, _ in loader])
    return x.mean().item(), (x * x).mean().sqrt().item()


# --- FirstNet
class _Net(nn.Module):
    def __init__(self, image_size=28 * 28):
        super().__init__()
        self.image_size = image_size
        self.fc0 = nn.Linear(image_size, 1000)
        self.fc1 = nn.Linear(1000, 50)
        self.fc2 = nn.Linear(50, 10)

    def logits(self, x):
        return self.fc2(F.relu(self.fc1(F.relu(self.fc0(x)))))


def _net(label, forward, expect=None, source=""):
    cls = type(f"FirstNet_{label}", (_Net,), {"forward": forward})
    return _a1("firstnet", "FirstNet", label, expect, source)(cls)


_net("firstnet_nn_flatten", lambda self, x: F.log_softmax(self.logits(nn.Flatten()(x)), dim=1),
     source="nn.Flatten() before the layers")
_net("firstnet_view_batch", lambda self, x: F.log_softmax(self.logits(x.view(x.size(0), -1)), dim=1),
     source="the lecture's x.view(x.size(0), -1)")
_net("firstnet_log_of_softmax", lambda self, x: torch.log(F.softmax(self.logits(x.reshape(len(x), -1)), dim=1)),
     source="log(softmax(...)): the same values, less stable")
_net("firstnet_dim_minus_one", lambda self, x: F.log_softmax(self.logits(x.flatten(1)), dim=-1),
     source="dim=-1 is dim=1 for (N, 10)")
_net("firstnet_squeeze", lambda self, x: F.log_softmax(self.logits(
    x.squeeze().flatten(1) if x.squeeze().dim() > 2 else x.squeeze()), dim=1),
     "squeeze() away the batch", source="x.squeeze() to drop the channel")
_net("firstnet_images_only", lambda self, x: F.log_softmax(self.logits(
    x.reshape(x.shape[0], x.shape[2] * x.shape[3])), dim=1), "flat vectors")
_net("firstnet_relu_on_logits", lambda self, x: F.log_softmax(F.relu(self.logits(x.reshape(len(x), -1))), dim=1),
     "ReLU applied to the logits")
_net("firstnet_raw_logits", lambda self, x: self.logits(x.reshape(len(x), -1)), "the raw logits were returned")
_net("firstnet_softmax", lambda self, x: F.softmax(self.logits(x.reshape(len(x), -1)), dim=1), "softmax probabilities")
_net("firstnet_dim0", lambda self, x: F.log_softmax(self.logits(x.reshape(len(x), -1)), dim=0), "dim=0")
_net("firstnet_sigmoid", lambda self, x: F.log_softmax(self.fc2(torch.sigmoid(self.fc1(torch.sigmoid(
    self.fc0(x.reshape(len(x), -1)))))), dim=1), "sigmoid is used")


# --- train_epoch
def _train(zero="before", loss="nll", report="weighted", train_mode=True, item=True):
    def train_epoch(model, loader, optimizer, device):
        if train_mode:
            model.train()
        total, count, batch_losses = 0.0, 0, []
        for data, target in loader:
            data, target = data.to(device), target.to(device)
            if zero == "before":
                optimizer.zero_grad()
            output = model(data)
            value = F.cross_entropy(output, target) if loss == "cross_entropy" else F.nll_loss(output, target)
            value.backward()
            if zero == "after_backward":
                optimizer.zero_grad()
            optimizer.step()
            total += (value.item() if item else value.detach()) * len(target)
            count += len(target)
            batch_losses.append(value.item())
        if report == "dataset":
            return total / len(loader.dataset)
        if report == "last":
            return batch_losses[-1]
        if report == "batch_mean":
            return sum(batch_losses) / len(batch_losses)
        return total / count
    return train_epoch


for _label, _kw, _expect, _source in [
    ("train_cross_entropy_on_log_probs", {"loss": "cross_entropy"}, None,
     "F.cross_entropy on log-probabilities: log_softmax is idempotent, the same loss"),
    ("train_divide_by_dataset", {"report": "dataset"}, None, "PyTorch MNIST example: / len(loader.dataset)"),
    ("train_no_zero_grad", {"zero": "never"}, "zero_grad() is not called", ""),
    ("train_zero_grad_after_backward", {"zero": "after_backward"}, "every step sees zero gradients", ""),
    ("train_last_batch_loss", {"report": "last"}, "loss of the last batch", ""),
    ("train_batch_mean", {"report": "batch_mean"}, "the batch means were averaged", "d2l-style average of batch means"),
    ("train_no_train_mode", {"train_mode": False}, "call model.train()", ""),
    ("train_returns_tensor", {"item": False}, "Python float", ""),
]:
    _a1("train_epoch", "train_epoch", _label, _expect, _source)(_train(**_kw))


@_a1("train_epoch", "train_epoch", "train_sum_reduction", "reduction='sum'")
def _(model, loader, optimizer, device):
    model.train()
    total, count = 0.0, 0
    for data, target in loader:
        optimizer.zero_grad()
        loss = F.nll_loss(model(data.to(device)), target.to(device), reduction="sum")
        loss.backward()
        optimizer.step()
        total += loss.item()
        count += len(target)
    return total / count


# --- evaluate
def _evaluate(loss="nll_sum", accuracy="samples", confusion="index", eval_mode=True, no_grad=True, classes=None,
              dtype=torch.int64):
    def evaluate(model, loader, device, num_classes=10):
        k = classes or num_classes
        if eval_mode:
            model.eval()
        total, correct, count, batches = 0.0, 0, 0, 0
        matrix = torch.zeros(k, k, dtype=dtype)
        with torch.no_grad() if no_grad else torch.enable_grad():
            for data, target in loader:
                data, target = data.to(device), target.to(device)
                output = model(data)
                if loss == "cross_entropy":
                    total += F.cross_entropy(output, target, reduction="sum").item()
                elif loss == "mean_times_n":
                    total += F.nll_loss(output, target).item() * len(target)
                elif loss == "batch_mean":
                    total += F.nll_loss(output, target).item() * len(loader.dataset) / len(loader)
                else:
                    total += F.nll_loss(output, target, reduction="sum").item()
                pred = output.argmax(dim=1)
                correct += pred.eq(target.view_as(pred)).sum().item()
                count += len(target)
                batches += 1
                if confusion == "bincount":
                    matrix += torch.bincount((target * k + pred).cpu(), minlength=k * k).reshape(k, k).to(dtype)
                else:
                    for t, p in zip(target.tolist(), pred.tolist()):
                        if confusion == "transposed":
                            matrix[p, t] += 1
                        else:
                            matrix[t, p] += 1
        acc = correct / count
        if accuracy == "percent":
            acc = 100.0 * acc
        elif accuracy == "batches":
            acc = correct / batches
        return {"loss": total / count, "accuracy": acc, "confusion": matrix}
    return evaluate


for _label, _kw, _expect, _source in [
    ("evaluate_cross_entropy_sum", {"loss": "cross_entropy"}, None, "F.cross_entropy(reduction='sum') on log-probabilities"),
    ("evaluate_mean_times_batch", {"loss": "mean_times_n"}, None, "PyTorch MNIST example: mean loss times the batch size"),
    ("evaluate_bincount_confusion", {"confusion": "bincount"}, None, "torch.bincount(target * k + pred)"),
    ("evaluate_percent", {"accuracy": "percent"}, "in percent", "PyTorch MNIST example prints 100. * correct / N"),
    ("evaluate_accuracy_per_batch", {"accuracy": "batches"}, "divided by the number of batches", ""),
    ("evaluate_transposed", {"confusion": "transposed"}, "confusion matrix is transposed", ""),
    ("evaluate_no_eval_mode", {"eval_mode": False}, "call model.eval()", ""),
    ("evaluate_no_no_grad", {"no_grad": False}, "torch.no_grad()", ""),
    ("evaluate_hard_coded_classes", {"classes": 10}, "the number of classes is hard-coded", ""),
    ("evaluate_float_confusion", {"dtype": torch.float32}, "dtype=torch.int64", ""),
]:
    _a1("evaluate", "evaluate", _label, _expect, _source)(_evaluate(**_kw))
