"""Build submissions from the release: a correct one, an untouched one, and ones with typical mistakes.

The demo places these as students' submissions and the tests autograde them; a
mistake is a textual edit of one answer cell of the instructor's solution, with
the task it should cost points in and a phrase the feedback must contain.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.notebook import read_notebook

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


@dataclass(frozen=True)
class Mistake:
    name: str
    cell: str  # grade_id of the answer cell to edit
    old: str  # text in the solution that the mistake replaces (must occur exactly once)
    new: str
    task: str  # the task whose checks must catch it
    feedback: str  # a phrase the feedback must contain
    also: tuple[str, ...] = ()  # tasks whose answers reuse this one and so may lose points too


MISTAKES: dict[str, list[Mistake]] = {
    "01_pytorch_basics": [
        Mistake("relu_on_logits", "firstnet",
                "return F.log_softmax(self.fc2(x), dim=1)", "return F.log_softmax(F.relu(self.fc2(x)), dim=1)",
                "firstnet", "ReLU applied to the logits"),
        Mistake("no_zero_grad", "train_epoch",
                "        optimizer.zero_grad()\n", "",
                "train_epoch", "zero_grad() is not called"),
        Mistake("unbiased_std", "mean_std",
                "return mean, (total_sq / count - mean**2) ** 0.5",
                "return mean, ((total_sq - count * mean**2) / (count - 1)) ** 0.5",
                "mean_std", "unbiased (N-1) std"),
        Mistake("confusion_transposed", "evaluate",
                "confusion[t, p] += 1", "confusion[p, t] += 1",
                "evaluate", "confusion matrix is transposed"),
        Mistake("distances_not_squared", "tensors",
                "return (diff * diff).sum(dim=2)", "return (diff * diff).sum(dim=2).sqrt()",
                "tensors", "square root was taken"),
        Mistake("eval_mode_missing", "evaluate",
                "    model.eval()\n", "",
                "evaluate", "call model.eval()"),
        Mistake("last_batch_loss", "train_epoch",
                "return total / count", "return loss.item()",
                "train_epoch", "loss of the last batch"),
        # Conventions of other courses (issue 11): both scored full marks before.
        Mistake("one_hot_ignores_num_classes", "tensors",
                "out = torch.zeros(len(labels), num_classes,", "out = torch.zeros(len(labels), int(labels.max()) + 1,",
                "tensors", "the number of columns comes from the labels"),
        Mistake("evaluate_hard_coded_classes", "evaluate",
                "confusion = torch.zeros(num_classes, num_classes,", "confusion = torch.zeros(10, 10,",
                "evaluate", "the number of classes is hard-coded"),
        # Predictions and the experiment (assignment 2's pattern).
        Mistake("predict_loss_log10", "predictions",
                "predict_initial_loss = math.log(10)", "predict_initial_loss = math.log10(10)",
                "predictions", "the logarithm is natural"),
        Mistake("predict_gradient_summed", "predictions",
                "predict_gradient = (0.1 - 1) / 2", "predict_gradient = 0.1 - 1",
                "predictions", "the loss is the mean over a batch of 2"),
        Mistake("chosen_lr_too_small", "chosen",
                "chosen_lr = 0.3", "chosen_lr = 0.01",
                "tuning", "the target is 91%"),
    ],
    "02_optimizers": [
        Mistake("sgd_on_a_copy", "sgd", "param.add_(grad, alpha=-lr)", "param = param - lr * grad",
                "sgd", "the parameter did not change"),
        Mistake("momentum_torch_form", "momentum",
                "v.mul_(mu).add_(grad, alpha=-lr)\n    param.add_(v)", "v.mul_(mu).add_(grad)\n    param.add_(v, alpha=-lr)",
                "momentum", "PyTorch's form"),
        Mistake("momentum_wrong_sign", "momentum",
                "v.mul_(mu).add_(grad, alpha=-lr)\n    param.add_(v)", "v.mul_(mu).add_(grad, alpha=lr)\n    param.add_(v)",
                "momentum", "the velocity has the wrong sign"),
        Mistake("momentum_state_reset", "momentum",
                '    if "velocity" not in state:\n        state["velocity"] = torch.zeros_like(param)',
                '    state["velocity"] = torch.zeros_like(param)',
                "momentum", "re-created at every step"),
        Mistake("nesterov_is_plain_momentum", "nesterov",
                "param.add_(v, alpha=mu).add_(grad, alpha=-lr)", "param.add_(v)",
                "nesterov", "this is plain momentum"),
        Mistake("adagrad_decays", "adagrad", "s.addcmul_(grad, grad)", "s.mul_(0.9).addcmul_(grad, grad, value=0.1)",
                "adagrad", "decays like RMSProp's"),
        Mistake("adagrad_state_on_cpu_float32", "adagrad",
                'state["sum_sq"] = torch.zeros_like(param)', 'state["sum_sq"] = torch.zeros(param.shape)',
                "adagrad", "torch.zeros_like(param)"),
        Mistake("rmsprop_eps_inside", "rmsprop",
                "param.addcdiv_(grad, a.sqrt().add_(eps), value=-lr)", "param.addcdiv_(grad, (a + eps).sqrt(), value=-lr)",
                "rmsprop", "eps is inside the square root"),
        Mistake("rmsprop_accumulates", "rmsprop",
                "a.mul_(rho).addcmul_(grad, grad, value=1 - rho)", "a.addcmul_(grad, grad)",
                "rmsprop", "accumulates like AdaGrad's"),
        Mistake("adam_no_bias_correction", "adam",
                "    m_hat = m / (1 - beta1**t)\n    v_hat = v / (1 - beta2**t)", "    m_hat = m\n    v_hat = v",
                "adam", "bias correction is missing", also=("adamw",)),
        Mistake("adam_step_starts_at_one", "adam", 'state["step"] = 0', 'state["step"] = 1',
                "adam", "the step counter is off by one", also=("adamw",)),
        Mistake("adam_step_incremented_after_use", "adam",
                '    state["step"] += 1\n    t, m, v = state["step"], state["m"], state["v"]',
                '    t, m, v = state["step"], state["m"], state["v"]\n    state["step"] += 1',
                "adam", "0 at the first update", also=("adamw",)),
        Mistake("adam_v_from_gradient", "adam",
                "v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)", "v.mul_(beta2).add_(grad, alpha=1 - beta2)",
                "adam", "v averages the gradient, not the squared gradient", also=("adamw",)),
        # Conventions of other courses (issue 11), diagnosed by the probes of autograder/conventions.py.
        Mistake("momentum_dampened", "momentum",
                "v.mul_(mu).add_(grad, alpha=-lr)\n    param.add_(v)", "v.mul_(mu).add_(grad, alpha=1 - mu)\n    param.add_(v, alpha=-lr)",
                "momentum", "your momentum is dampened"),
        Mistake("rmsprop_hard_coded_rho", "rmsprop",  # the checks use rho = 0.9: this scored full marks before
                "a.mul_(rho).addcmul_(grad, grad, value=1 - rho)", "a.mul_(0.9).addcmul_(grad, grad, value=0.1)",
                "rmsprop", "ignores the rho it is given"),
        Mistake("adam_efficient_form", "adam",
                "    m_hat = m / (1 - beta1**t)\n    v_hat = v / (1 - beta2**t)\n    param.addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)",
                "    step = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)\n    param.addcdiv_(m, v.sqrt().add_(eps), value=-step)",
                "adam", "Kingma & Ba's \"efficient\" form", also=("adamw",)),
        Mistake("schedule_off_by_one", "linear_decay", "alpha = min(step, tau) / tau", "alpha = min(step + 1, tau) / tau",
                "linear_decay", "off by one"),
        Mistake("search_linear_space", "search",
                "return 10 ** (math.log10(low) + u * (math.log10(high) - math.log10(low)))",
                "return low + u * (high - low)",
                "search", "uniform in linear space"),
        # Issue 12: predictions, the validation split and the tuned learning rate.
        Mistake("predict_adam_corrected_step", "predictions",
                "predict_adam_uncorrected = 1.0 - 0.01 * (0.2 * -3) / (0.01 * 9) ** 0.5",
                "predict_adam_uncorrected = 1.01",
                "predictions", "that is the bias-corrected first step"),
        Mistake("predict_drop_in_torch_form", "predictions",
                "predict_step_after_drop = 0.9 * (0.9 * -0.1 - 0.1) - 0.01",
                "predict_step_after_drop = -0.01 * (1 + 0.9 * (1 + 0.9))",
                "predictions", "that is PyTorch's form"),
        Mistake("validation_inside_training", "split",
                "return x[train], y[train], x[val], y[val]", "return x, y, x[val], y[val]",
                "tuning", "validation examples are also training examples"),
        Mistake("chosen_lr_too_large", "chosen",
                "chosen_lr = 3.803e-3", "chosen_lr = 3e-2",
                "tuning", "the target is 88%"),
    ],
    "03_init_bn_dropout": [
        Mistake("fans_swapped", "fans", "    return fan_in, fan_out", "    return fan_out, fan_in",
                "fans", "fan_in and fan_out are swapped", also=("kaiming",)),
        Mistake("xavier_uniform_bound_is_std", "xavier",
                "a = gain * math.sqrt(6.0 / (fan_in + fan_out))", "a = gain * math.sqrt(2.0 / (fan_in + fan_out))",
                "xavier", "using the standard deviation as the bound"),
        Mistake("bn_unbiased_variance", "batchnorm",
                "var = x.var(dim=dims, keepdim=True, unbiased=False)", "var = x.var(dim=dims, keepdim=True, unbiased=True)",
                "batchnorm_train", "normalized with the unbiased (N-1) variance", also=("batchnorm_running",)),
        Mistake("bn_no_gamma_beta", "batchnorm",
                "return x_hat * self.weight.reshape(shape) + self.bias.reshape(shape)", "return x_hat",
                "batchnorm_train", "does not use gamma and beta", also=("batchnorm_running",)),
        Mistake("bn_stats_over_all_dims", "batchnorm",
                "dims = (0,) if x.dim() == 2 else (0, 2, 3)", "dims = (0,) if x.dim() == 2 else (0, 1, 2, 3)",
                "batchnorm_train", "over the wrong dimensions", also=("batchnorm_running",)),
        Mistake("bn_momentum_on_running", "batchnorm",
                "self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean.reshape(-1))",
                "self.running_mean.mul_(self.momentum).add_((1 - self.momentum) * mean.reshape(-1))",
                "batchnorm_running", "momentum is applied to the wrong term"),
        Mistake("bn_updates_in_eval", "batchnorm", "        if self.training:\n", "        if True:\n",
                "batchnorm_running", "the running statistics change in eval mode"),
        Mistake("dropout_not_rescaled", "dropout", "return x * mask / (1 - self.p)", "return x * mask",
                "dropout", "are not rescaled"),
        Mistake("dropout_in_eval", "dropout", "if not self.training or self.p == 0:", "if self.p == 0:",
                "dropout", "dropout is active in eval mode"),
        Mistake("predict_slide_dropout_rule", "predictions",
                "predict_dropout_value = 2.0 / 0.75", "predict_dropout_value = 2.0 * 0.75",
                "predictions", "the slide's test-time rule"),
    ],
    "04_augmentation_transfer": [
        Mistake("translate_same_draw", "translate",
                "shifts = torch.randint(-m, m + 1, (n, 2), generator=generator)",
                "shifts = torch.randint(-m, m + 1, (1, 2), generator=generator).expand(n, 2)",
                "translate", "got the same random draw"),
        Mistake("translate_wraps_around", "translate",
                "out[i] = padded[i, :, m - dy:m - dy + h, m - dx:m - dx + w]",
                "out[i] = torch.roll(x[i], (dy, dx), dims=(-2, -1))",
                "translate", "torch.roll wraps around"),
        Mistake("rotate_clockwise", "rotate",
                "expand(n) * (math.pi / 180)", "expand(n) * (-math.pi / 180)",
                "rotate", "the rotation is clockwise"),
        Mistake("noise_same_draw", "noise",
                "torch.randn(x.shape, generator=generator, dtype=x.dtype)",
                "torch.randn(x.shape[1:], generator=generator, dtype=x.dtype)",
                "noise", "got the same random draw"),
        Mistake("cutout_misses_last_position", "cutout",
                "top = torch.randint(0, h - size + 1, (n,), generator=generator)",
                "top = torch.randint(0, h - size, (n,), generator=generator)",
                "cutout", "upper bound is exclusive"),
        Mistake("labels_shuffled", "augment_batch", "    return out, y",
                "    return out, y[torch.randperm(len(y), generator=generator)]",
                "augment_batch", "the labels changed", also=("aug_experiment",)),
        Mistake("freeze_head_frozen", "freeze", "trainable = i >= len(layers) - k", "trainable = i > len(layers) - k",
                "freeze", "the classification head is frozen"),
        Mistake("optimizer_over_all_parameters", "optimizer",
                "torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)",
                "torch.optim.Adam(model.parameters(), lr=lr)",
                "optimizer", "the optimizer holds frozen parameters too"),
        Mistake("frozen_batchnorm_drifts", "fine_tune", "                m.eval()\n", "                pass\n",
                "fine_tune", "the running statistics of a frozen BatchNorm changed"),
        Mistake("predict_noise_stds_added", "predictions", "predict_noise_std = 0.5", "predict_noise_std = 0.7",
                "predictions", "standard deviations do not add"),
    ],
    "05_second_order": [
        Mistake("newton_inverts", "newton", "return torch.linalg.solve(H, -g.unsqueeze(-1)).squeeze(-1)",
                "return -torch.linalg.inv(H) @ g", "newton", "it forms an inverse"),
        Mistake("newton_wrong_sign", "newton", "return (x + newton_direction(g, H)).detach()",
                "return (x - newton_direction(g, H)).detach()", "newton", "the step has the wrong sign"),
        Mistake("gn_inverts", "gauss_newton", "d = torch.linalg.solve(J.T @ J, -(J.T @ r))",
                "d = -torch.linalg.inv(J.T @ J) @ (J.T @ r)", "gauss_newton", "it forms an inverse"),
        Mistake("gn_wrong_sign", "gauss_newton", "return (x + d).detach()", "return (x - d).detach()",
                "gauss_newton", "the step has the wrong sign"),
        Mistake("lm_damping_wrong_way", "levenberg_marquardt", "return trial, lam / factor",
                "return trial, lam * factor", "levenberg_marquardt", "the damping is updated the wrong way"),
        Mistake("lm_levenberg_identity", "levenberg_marquardt", "A + lam * torch.diag(torch.diagonal(A))",
                "A + lam * torch.eye(len(A), dtype=A.dtype, device=A.device)", "levenberg_marquardt",
                "that is Levenberg's damping lam * I"),
        Mistake("armijo_wrong_sign", "line_search", "<= fx + c * alpha * slope", "<= fx - c * alpha * slope",
                "line_search", "the sufficient-decrease condition has the wrong sign"),
        Mistake("angle_per_tensor", "instruments",
                "                    cos = (step @ self.previous_step).item() / lengths\n"
                "                    angle = math.degrees(math.acos(max(-1.0, min(1.0, cos))))",
                "                    sizes = [p.numel() for p in model.parameters()]\n"
                "                    angles = [math.degrees(math.acos(max(-1.0, min(1.0, (a @ b).item() / (a.norm() * "
                "b.norm()).item()))))\n"
                "                              for a, b in zip(step.split(sizes), self.previous_step.split(sizes))]\n"
                "                    angle = sum(angles) / len(angles)",
                "instruments", "the angle is computed per parameter tensor"),
        Mistake("angle_in_radians", "instruments", "angle = math.degrees(math.acos(max(-1.0, min(1.0, cos))))",
                "angle = math.acos(max(-1.0, min(1.0, cos)))", "instruments", "the angle is in radians"),
        Mistake("scheduler_angle_reversed", "scheduler", "elif not math.isnan(angle) and angle < self.max_angle:",
                "elif not math.isnan(angle) and angle > self.max_angle:", "scheduler",
                "the rate grows when consecutive steps point apart"),
        Mistake("predict_safe_lr_as_max", "predictions", "predict_gd_max_lr = 2 / 50", "predict_gd_max_lr = 1 / 50",
                "predictions", "1 / lambda_max is a safe rate, not the largest"),
        Mistake("experiment_safe_lr", "experiment",
                "experiment_lr = 2.0 / float(eigenvalues.min() + eigenvalues.max())",
                "experiment_lr = 1.0 / float(eigenvalues.max())", "lr_experiment", "lr = 1 / lambda_max is safe but slow"),
    ],
}

# How wrong each mistake is, for the scoring policy (autograder.scoring, tests/autograder/test_checks.py):
# "wrong": a wrong algorithm, which keeps at most 1/3 of its task's points; "slip": the right algorithm with a
# slip (state on the wrong device or dtype, the wrong loss reported after the right training), which keeps at
# least 2/3. Mistakes not listed only have to cost points.
SEVERITY: dict[str, str] = {
    **dict.fromkeys(["relu_on_logits", "no_zero_grad", "sgd_on_a_copy", "momentum_torch_form", "momentum_wrong_sign",
                     "momentum_state_reset", "nesterov_is_plain_momentum", "adagrad_decays", "rmsprop_eps_inside",
                     "rmsprop_accumulates", "adam_no_bias_correction", "adam_step_starts_at_one",
                     "adam_step_incremented_after_use", "adam_v_from_gradient", "momentum_dampened",
                     "rmsprop_hard_coded_rho", "adam_efficient_form"], "wrong"),
    **dict.fromkeys(["translate_wraps_around", "freeze_head_frozen", "optimizer_over_all_parameters",
                     "frozen_batchnorm_drifts"], "wrong"),
    **dict.fromkeys(["newton_wrong_sign", "gn_wrong_sign", "armijo_wrong_sign", "angle_per_tensor", "angle_in_radians",
                     "scheduler_angle_reversed"], "wrong"),
    **dict.fromkeys(["newton_inverts", "gn_inverts"], "slip"),  # the right numbers, computed the wasteful way
    "adagrad_state_on_cpu_float32": "slip",
    "last_batch_loss": "slip",
}


# An answer cell that makes every later test cell a no-op in the student's kernel. Under stock
# nbgrader, a test cell with no output earns full credit, so this alone scores full marks; the
# out-of-kernel checks ignore what the kernel did to test cells.
KERNEL_PATCH = """\
_ip = get_ipython()
_real_run, _real_async = _ip.run_cell, _ip.run_cell_async
def _skip_checks(raw_cell, *args, **kwargs):
    return _real_run("pass" if "# Check" in raw_cell else raw_cell, *args, **kwargs)
async def _skip_checks_async(raw_cell, *args, **kwargs):
    return await _real_async("pass" if "# Check" in raw_cell else raw_cell, *args, **kwargs)
_ip.run_cell, _ip.run_cell_async = _skip_checks, _skip_checks_async
"""


def with_kernel_patch(release_path: Path):
    """The untouched release with KERNEL_PATCH prepended to its first answer cell."""
    nb = read_notebook(release_path)
    first = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
    first.source = KERNEL_PATCH + "\n" + first.source
    return nb


def strip_solution_markers(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if line.strip() not in SOLUTION_MARKERS)


def answer_sources(solution_nb) -> dict[str, str]:
    """grade_id -> the instructor's answer, markers removed, for every answer cell."""
    out = {}
    for cell in solution_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            out[meta["grade_id"]] = strip_solution_markers(cell.source)
    return out


def apply_mistake(answers: dict[str, str], mistake: Mistake) -> dict[str, str]:
    source = answers[mistake.cell]
    if source.count(mistake.old) != 1:
        raise ValueError(f"mistake {mistake.name!r}: the text to replace occurs {source.count(mistake.old)} times "
                         f"in answer cell {mistake.cell!r} (expected once); update MISTAKES after editing the solution")
    return {**answers, mistake.cell: source.replace(mistake.old, mistake.new)}


def fill(release_nb, answers: dict[str, str]):
    """A copy of the released notebook with its answer cells replaced by ``answers``."""
    nb = copy.deepcopy(release_nb)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in answers:
            cell.source = answers[grade_id]
    return nb


def make_submission(release_path: Path, solution_path: Path, mistakes: list[Mistake] = ()):
    """The release filled with the instructor's answers, with ``mistakes`` applied."""
    answers = answer_sources(read_notebook(solution_path))
    for mistake in mistakes:
        answers = apply_mistake(answers, mistake)
    return fill(read_notebook(release_path), answers)


def write(nb, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
