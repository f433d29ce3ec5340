"""Hidden checks for assignment 04_augmentation_transfer: augmentations, transfer helpers, the experiment.

Augmentations are checked by their properties rather than against one fixed sequence of random draws, so any
correct way of drawing passes: every output sample of ``translate`` must be its input shifted by some (dy, dx)
in range with zeros coming in, every sample of ``hflip`` its input or its mirror image, and so on; the draws
must differ from sample to sample, repeat under the same generator seed and change with the seed. Rotation is
compared with ``torchvision.transforms.v2.functional.rotate``. Statistical tolerances are five standard errors.
Transfer helpers are run on the assignment's SmallCNN (the reference's copy) and on an ``nn.Sequential``.
Everything runs on every device the grader has; the generator is always a CPU ``torch.Generator``.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from autograder.compare import check_prediction, check_tensor, check_true, describe, fail
from autograder.references import augmentation_transfer as ref
from autograder.scoring import Part

SIGMAS = 5.0
CAUSES = ref.MISTAKES
ROLL = ("pixels that leave on one side come back on the other (torch.roll wraps around); pad with zeros "
        "instead, so what comes in from outside is 0")

# What the points are for (autograder.scoring). A transform that is right for one image but draws once for the
# whole batch keeps part of its points; one that computes the wrong transform keeps only the contract's share.
SCORING = {
    "translate": [
        Part("the shifts", 2, ("test_translate_shifts_each_sample_with_zero_padding",),
             "each output is its input moved by a whole number of pixels in range, zeros coming in"),
        Part("per-sample draws", 2, ("test_translate_draws_per_sample",), "every shift in range occurs, samples differ"),
        Part("the contract", 1, ("test_augmentation_contract",),
             "shape, dtype, device, input unchanged, seeds"),
    ],
    "cutout": [
        Part("the square", 2, ("test_cutout_zeroes_one_square_per_sample",),
             "exactly one size x size square inside the image, every channel"),
        Part("per-sample positions", 2, ("test_cutout_positions_cover_the_image",),
             "every position occurs, samples differ"),
        Part("the contract", 1, ("test_augmentation_contract",), "shape, dtype, device, input unchanged, seeds"),
    ],
    "fine_tune": [
        Part("frozen layers stay", 2, ("test_fine_tune_changes_only_the_trainable_layers",),
             "frozen weights and frozen BatchNorm statistics unchanged after training"),
        Part("train mode", 1, ("test_train_mode_keeps_frozen_batchnorm_in_eval",)),
        Part("it learns", 1, ("test_fine_tune_learns",), "the loss falls on a small training set"),
    ],
}


def student_function(student, name):
    fn = getattr(student, name)
    if not callable(fn):
        fail(f"`{name}` should be a function, got {describe(fn)}")
    return fn


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n, c=1, h=28, w=28, device="cpu", dtype=torch.float32, seed=0, low=0.1):
    """Random images in [low, 1] (no zeros, so what an augmentation zeroes shows)."""
    return (torch.rand(n, c, h, w, generator=gen(1000 + seed), dtype=dtype) * (1 - low) + low).to(device)


def call(fn, name, x, *args, seed=0):
    out = fn(x, *args, generator=gen(seed))
    if not isinstance(out, torch.Tensor):
        fail(f"{name} should return a tensor, got {describe(out)}")
    if tuple(out.shape) != tuple(x.shape):
        fail(f"{name} on a batch of shape {tuple(x.shape)} returned shape {tuple(out.shape)}; an augmentation "
             "keeps the shape")
    return out


# --- the contract, for every augmentation -----------------------------------------------------------------
AUGMENTATIONS = {  # function: (task, extra arguments)
    "translate": ("translate", (3,)),
    "hflip": ("hflip", (0.5,)),
    "random_rotate": ("rotate", (20.0,)),
    "gaussian_noise": ("noise", (0.2,)),
    "cutout": ("cutout", (6,)),
    "my_augmentation": ("augment_batch", ()),
}
AUG_PARAMS = [pytest.param(name, marks=pytest.mark.task(task), id=name) for name, (task, _) in AUGMENTATIONS.items()]


@pytest.mark.parametrize("name", AUG_PARAMS)
def test_augmentation_contract(student, name, device):
    fn = student_function(student, name)
    args = AUGMENTATIONS[name][1]
    for dtype in (torch.float32, torch.float64):
        x = images(16, c=2, h=20, w=24, device=device, dtype=dtype)
        before = x.clone()
        out = call(fn, name, x, *args, seed=1)
        check_true(out.dtype == dtype and out.device == x.device,
                   f"{name} on a {dtype} batch on {device} returned {out.dtype} on {out.device}; keep the input's "
                   "dtype and device")
        check_true(torch.equal(x, before), f"{name} changed its input in place; return a new tensor")
        check_true(bool(torch.isfinite(out).all()), f"{name} returned NaN or inf")
        again = call(fn, name, x, *args, seed=1)
        check_true(torch.equal(out, again),
                   f"{name}: two calls with generators seeded alike gave different results; draw every random "
                   "number from the `generator` argument (torch.rand/randn/randint(..., generator=generator)), not "
                   "from the global torch, Python or numpy random state")
        other = call(fn, name, x, *args, seed=2)
        check_true(not torch.equal(out, other),
                   f"{name}: generators with different seeds gave the same result on a batch of 16; the "
                   "transform must be random")


# --- translate ---------------------------------------------------------------------------------------------
def _find_shift(out_i, x_i, m):
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            if torch.equal(out_i, ref.shift(x_i, dy, dx)):
                return dy, dx
    return None


def _rolled(out_i, x_i, m):
    return any(torch.equal(out_i, torch.roll(x_i, (dy, dx), dims=(-2, -1)))
               for dy in range(-m, m + 1) for dx in range(-m, m + 1))


@pytest.mark.task("translate")
def test_translate_shifts_each_sample_with_zero_padding(student, device):
    fn = student_function(student, "translate")
    m = 3
    x = images(32, c=2, h=12, w=14, device=device)
    out = call(fn, "translate", x, m)
    for i in range(len(x)):
        if _find_shift(out[i], x[i], m) is None:
            hint = f"\n  Likely cause: {ROLL}" if _rolled(out[i], x[i], m) else ""
            fail(f"translate(x, max_shift={m}): sample {i} of a batch of shape {tuple(x.shape)} on {device} is not "
                 f"its input moved by whole pixels (dy, dx) with |dy|, |dx| <= {m} and zeros filling the rows and "
                 f"columns that come in from outside{hint}")
    check_true(torch.equal(call(fn, "translate", x, 0), x), "translate(x, max_shift=0) should return x unchanged")


@pytest.mark.task("translate")
def test_translate_draws_per_sample(student):
    fn = student_function(student, "translate")
    m = 2
    x = images(300, h=10, w=10)
    out = call(fn, "translate", x, m, seed=3)
    shifts = [_find_shift(out[i], x[i], m) for i in range(len(x))]
    if any(s is None for s in shifts):
        fail(f"translate(x, max_shift={m}): some samples are not shifted copies of their input (see the other check)")
    if len(set(shifts)) == 1:
        fail(f"translate: all 300 samples of the batch were shifted by the same {shifts[0]}. Likely cause: "
             f"{CAUSES['same_draw']}")
    for axis, label in ((0, "dy (rows)"), (1, "dx (columns)")):
        seen = sorted({s[axis] for s in shifts})
        check_true(seen == list(range(-m, m + 1)),
                   f"translate(x, max_shift={m}) on 300 samples: the shifts {label} that occurred are {seen}; each of "
                   f"{list(range(-m, m + 1))} should (torch.randint's upper bound is exclusive: "
                   "randint(-m, m + 1))")


# --- hflip -------------------------------------------------------------------------------------------------
@pytest.mark.task("hflip")
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_hflip_mirrors_a_fraction_p_of_the_samples(student, p, device):
    fn = student_function(student, "hflip")
    n = 400
    x = images(n, c=2, h=6, w=7, device=device)
    out = call(fn, "hflip", x, p, seed=4)
    flipped = 0
    for i in range(n):
        if torch.equal(out[i], x[i].flip(-1)):
            flipped += 1
        elif not torch.equal(out[i], x[i]):
            hint = " (it is flipped upside down: mirror left-right, the last dimension)" \
                if torch.equal(out[i], x[i].flip(-2)) else ""
            fail(f"hflip(x, p={p}): sample {i} is neither its input nor its input mirrored left-right "
                 f"(x[i].flip(-1)){hint}")
    tol = SIGMAS * math.sqrt(p * (1 - p) / n)
    if abs(flipped / n - p) > tol:
        hint = f"\n  Likely cause: {CAUSES['same_draw']}" if 0 < p < 1 and flipped in (0, n) else ""
        if abs(flipped / n - (1 - p)) <= tol and p != 0.5:
            hint = "\n  Likely cause: p is used as the probability of keeping a sample; it is the probability of flipping"
        fail(f"hflip(x, p={p}) flipped {flipped} of {n} samples; expected a fraction p (within {tol:.1%}){hint}")


@pytest.mark.task("hflip")
def test_hflip_is_an_involution(student, device):
    fn = student_function(student, "hflip")
    x = images(8, c=3, h=5, w=9, device=device)
    once = call(fn, "hflip", x, 1.0)
    check_tensor(once, x.flip(-1), "hflip(x, p=1.0) (every sample mirrored)", rtol=0, atol=0)
    check_tensor(call(fn, "hflip", once, 1.0), x, "hflip(hflip(x, p=1.0), p=1.0) (mirroring twice)", rtol=0, atol=0)


# --- rotate ------------------------------------------------------------------------------------------------
def _tv_rotate(x, angles):
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    return torch.stack([TF.rotate(x[i:i + 1], float(a), interpolation=InterpolationMode.BILINEAR)[0]
                        for i, a in enumerate(angles)])


@pytest.mark.task("rotate")
def test_rotate_matches_torchvision(student, device):
    fn = student_function(student, "rotate")
    x = images(5, c=2, h=16, w=20, device=device, low=0.0)
    angles = torch.tensor([0.0, 12.5, -30.0, 90.0, 7.0])
    got = fn(x, angles.to(device))
    expected = _tv_rotate(x, angles.tolist())
    check_tensor(got, expected, f"rotate(x, degrees={angles.tolist()}) on a batch of shape {tuple(x.shape)} on "
                                f"{device}, against torchvision's v2.functional.rotate (bilinear)",
                 rtol=0, atol=2e-4, mistakes={
                     "the rotation is clockwise; positive angles rotate counter-clockwise, as in torchvision":
                         lambda: _tv_rotate(x, (-angles).tolist()),
                     "nearest-neighbour sampling; use bilinear interpolation (mode='bilinear')":
                         lambda: _tv_nearest(x, angles.tolist()),
                 })
    check_tensor(fn(x, torch.zeros(5, device=device)), x, "rotate(x, degrees=0)", rtol=0, atol=1e-5)


def _tv_nearest(x, angles):
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    return torch.stack([TF.rotate(x[i:i + 1], float(a), interpolation=InterpolationMode.NEAREST)[0]
                        for i, a in enumerate(angles)])


def _best_angle(out_i, x_i, max_degrees):
    """The angle in [-max_degrees, max_degrees] whose reference rotation is closest to out_i, and its error."""
    grid = torch.linspace(-max_degrees, max_degrees, 81, dtype=torch.float64)
    xs = x_i.cpu().double()[None].expand(len(grid), *x_i.shape)
    errors = (ref.rotate(xs, grid) - out_i.cpu().double()).abs().amax(dim=(1, 2, 3))
    lo_i = int(errors.argmin())
    lo, hi = float(grid[max(lo_i - 1, 0)]), float(grid[min(lo_i + 1, len(grid) - 1)])

    def err(a):
        return float((ref.rotate(x_i.cpu().double()[None], a)[0] - out_i.cpu().double()).abs().max())

    for _ in range(40):  # ternary search on the bracketing interval
        a, b = lo + (hi - lo) / 3, hi - (hi - lo) / 3
        if err(a) < err(b):
            hi = b
        else:
            lo = a
    best = (lo + hi) / 2
    return best, err(best)


@pytest.mark.task("rotate")
def test_random_rotate_draws_an_angle_per_sample(student, device):
    fn = student_function(student, "random_rotate")
    x = images(10, h=16, w=16, device=device, low=0.0)
    check_tensor(call(fn, "random_rotate", x, 0.0), x, "random_rotate(x, max_degrees=0)", rtol=0, atol=1e-5)
    out = call(fn, "random_rotate", x, 15.0, seed=5)
    check_true(bool((out >= -1e-5).all() and (out <= 1 + 1e-5).all()),
               "random_rotate of images in [0, 1] left [0, 1]; bilinear interpolation and zero fill cannot")
    angles = []
    for i in range(len(x)):
        angle, error = _best_angle(out[i], x[i], 15.0)
        if error > 1e-3:
            fail(f"random_rotate(x, max_degrees=15): sample {i} is not its input rotated about the center by an "
                 f"angle in [-15, 15] degrees (bilinear, zeros outside); the closest rotation differs by {error:.3g}")
        angles.append(angle)
    if max(angles) - min(angles) < 1e-3:
        fail(f"random_rotate: all 10 samples were rotated by the same angle ({angles[0]:.2f} degrees). Likely cause: "
             f"{CAUSES['same_draw']}")


# --- gaussian noise ----------------------------------------------------------------------------------------
@pytest.mark.task("noise")
@pytest.mark.parametrize("std", [0.05, 0.5])
def test_noise_has_the_stated_std_and_is_independent(student, std, device):
    fn = student_function(student, "gaussian_noise")
    x = images(64, c=3, h=16, w=16, device=device, dtype=torch.float64)
    out = call(fn, "gaussian_noise", x, std, seed=6)
    noise = (out - x).double().cpu()
    n = noise.numel()
    same = all(torch.allclose(noise[0], noise[i], atol=1e-6) for i in range(1, len(noise)))  # x + z - x rounds
    check_true(not same, f"gaussian_noise: every sample got the same noise. Likely cause: {CAUSES['same_draw']}")
    if bool((out.min() >= 0) and (out.max() <= 1)) and std == 0.5:
        fail(f"gaussian_noise(x, std={std}): the output stays in [0, 1], so it was clamped; add the noise and "
             "do not clamp (clamping changes its standard deviation)")
    check_true(abs(noise.mean().item()) < SIGMAS * std / math.sqrt(n),
               f"gaussian_noise(x, std={std}): the noise has mean {noise.mean().item():.4g}; it should be 0")
    measured = noise.std().item()
    tol = SIGMAS * std / math.sqrt(2 * n)
    if abs(measured - std) > tol:
        hint = " (that is std squared: std multiplies the standard normal draw, the variance is std**2)" \
            if abs(measured - std**2) < tol else ""
        fail(f"gaussian_noise(x, std={std}): the noise added has standard deviation {measured:.4g}; expected "
             f"{std} (within {tol:.2g}){hint}")
    corr = torch.corrcoef(noise.reshape(len(noise), -1)[:2])[0, 1].item()
    check_true(abs(corr) < 0.2, f"gaussian_noise: the noise of two samples is correlated ({corr:.2f}); draw an "
                                "independent value for every element")


# --- cutout ------------------------------------------------------------------------------------------------
def _square(out_i, x_i, size):
    """(top, left) of the zeroed square, or a message about what is wrong."""
    zero = out_i == 0
    per_pixel = zero.all(dim=0)
    if not torch.equal(zero.any(dim=0), per_pixel):
        return "the square is not zeroed in every channel"
    if not torch.equal(out_i[:, ~per_pixel], x_i[:, ~per_pixel]):
        return "pixels outside the square changed"
    rows, cols = per_pixel.nonzero(as_tuple=True)
    if int(per_pixel.sum()) != size * size:
        return f"{int(per_pixel.sum())} pixels were zeroed instead of size * size = {size * size}"
    top, left = int(rows.min()), int(cols.min())
    if int(rows.max()) - top != size - 1 or int(cols.max()) - left != size - 1:
        return "the zeroed pixels do not form one square"
    return top, left


@pytest.mark.task("cutout")
def test_cutout_zeroes_one_square_per_sample(student, device):
    fn = student_function(student, "cutout")
    size = 5
    x = images(40, c=3, h=14, w=18, device=device)
    out = call(fn, "cutout", x, size)
    for i in range(len(x)):
        found = _square(out[i], x[i], size)
        if isinstance(found, str):
            fail(f"cutout(x, size={size}) on a batch of shape {tuple(x.shape)}: in sample {i} {found}; zero one "
                 f"{size} x {size} square lying wholly inside the image, in every channel, and nothing else")
    check_true(torch.equal(call(fn, "cutout", x, 0), x), "cutout(x, size=0) should return x unchanged")


@pytest.mark.task("cutout")
def test_cutout_positions_cover_the_image(student):
    fn = student_function(student, "cutout")
    size, h, w = 3, 8, 9
    x = images(500, h=h, w=w)
    out = call(fn, "cutout", x, size, seed=7)
    corners = [_square(out[i], x[i], size) for i in range(len(x))]
    if any(isinstance(c, str) for c in corners):
        fail(f"cutout(x, size={size}): some samples do not have exactly one zeroed square (see the other check)")
    if len(set(corners)) == 1:
        fail(f"cutout: all 500 samples have the square at the same place. Likely cause: {CAUSES['same_draw']}")
    tops, lefts = sorted({c[0] for c in corners}), sorted({c[1] for c in corners})
    check_true(tops == list(range(h - size + 1)) and lefts == list(range(w - size + 1)),
               f"cutout(x, size={size}) on 500 images of {h} x {w}: the square's top rows were {tops} and left columns "
               f"{lefts}; every position that keeps the square inside should occur (top 0 .. {h - size}, left "
               f"0 .. {w - size}; torch.randint's upper bound is exclusive)")


# --- augment_batch -----------------------------------------------------------------------------------------
@pytest.mark.task("augment_batch")
def test_augment_batch_keeps_the_labels(student, device):
    fn = student_function(student, "augment_batch")
    x = images(32, device=device, low=0.0)
    y = torch.randint(0, 10, (32,), generator=gen(8)).to(device)
    y_before = y.clone()
    got = fn(x, y, generator=gen(9))
    if not isinstance(got, tuple) or len(got) != 2:
        fail(f"augment_batch(x, y, generator) should return a pair (augmented images, labels), got {describe(got)}")
    xa, ya = got
    check_true(torch.equal(y, y_before), f"augment_batch changed the labels it was given in place. Likely cause: "
                                         f"{CAUSES['labels_changed']}")
    if not isinstance(ya, torch.Tensor) or ya.dtype != y.dtype or ya.shape != y.shape or not torch.equal(ya, y):
        fail(f"augment_batch returned labels {describe(ya)} that differ from the labels given. Likely cause: "
             f"{CAUSES['labels_changed']}")
    check_true(isinstance(xa, torch.Tensor) and xa.shape == x.shape and xa.dtype == x.dtype and xa.device == x.device,
               f"augment_batch: the images should keep shape, dtype and device; got {describe(xa)}")
    check_true(not torch.equal(xa, x), "augment_batch returned the images unchanged; it should augment them")
    xb, _ = fn(x, y, generator=gen(9))
    check_true(torch.equal(xa, xb), "augment_batch: the same generator seed gave different images; draw from "
                                    "`generator` only")


# --- the experiment ----------------------------------------------------------------------------------------
@pytest.mark.task("aug_experiment")
def test_augmentation_reaches_the_target_on_300_digits(student):
    fn = student_function(student, "augment_batch")
    e = ref.EXPERIMENT

    def augment(xb, yb, generator):
        out = fn(xb, yb, generator=generator)
        if not isinstance(out, tuple) or len(out) != 2:
            fail(f"augment_batch should return (images, labels), got {describe(out)}")
        return out

    acc = ref.run_experiment(augment)
    check_true(acc >= e["target"],
               f"SmallCNN trained from scratch on {e['n_train']} digits for {e['epochs']} epochs (Adam, lr "
               f"{e['lr']}, batch {e['batch_size']}) with your augment_batch reaches {acc:.1%} test accuracy; the "
               f"target is {e['target']:.0%} (without augmentation it reaches about 89%)")


# --- transfer: freezing ------------------------------------------------------------------------------------
LAYER_NAMES = ["conv1", "bn1", "conv2", "bn2", "fc1", "fc2"]


def flags(model):
    return {name: [p.requires_grad for p in m.parameters(recurse=False)]
            for name, m in model.named_modules() if list(m.parameters(recurse=False))}


def seq_model():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 8),
                         nn.ReLU(), nn.Linear(8, 3, bias=False))


def _freeze_hint(trainable: list[bool], k: int) -> str:
    """Name the mistake behind per-layer trainable flags (last layer last) when freezing with k."""
    n = len(trainable)
    off_by_one = k >= 1 and trainable == [i >= n - k + 1 for i in range(n)]
    if k >= 1 and not trainable[-1]:
        return f"\n  Likely cause: {CAUSES['head_frozen']}" + (
            " (off by one: only the last k - 1 layers train)" if off_by_one else "")
    if off_by_one:
        return "\n  Likely cause: off by one: only the last k - 1 layers train"
    return ""


@pytest.mark.task("freeze")
@pytest.mark.parametrize("k", [1, 0, 2, 3, 6])
def test_freeze_sets_requires_grad_on_the_last_k_layers(student, k, device):
    fn = student_function(student, "freeze_all_but_last")
    torch.manual_seed(0)
    model, expected = ref.SmallCNN().to(device), ref.freeze_all_but_last(ref.SmallCNN(), k)
    for p in model.parameters():
        p.requires_grad_(k % 2 == 0)  # a start the answer must overwrite either way
    fn(model, k)
    got, want = flags(model), flags(expected)
    if got != want:
        trainable = [n for n, f in got.items() if all(f)]
        if any(len(set(f)) > 1 for f in got.values()):
            hint = ("\n  Likely cause: parameters were counted instead of layers (a layer's weight and bias are two "
                    "parameters): freeze or unfreeze whole layers")
        else:
            hint = _freeze_hint([all(f) for f in got.values()], k)
        fail(f"freeze_all_but_last(SmallCNN(), k={k}): the parameterized layers are {LAYER_NAMES}; the last {k} "
             f"should have requires_grad True and the others False; trainable now: {trainable}{hint}")
    seq = seq_model()
    fn(seq, 2)
    got = [p.requires_grad for p in seq.parameters()]
    if got != [False, False, False, False, True, True, True]:
        layers = [all(p.requires_grad for p in m.parameters(recurse=False)) for m in seq if list(m.parameters())]
        fail(f"freeze_all_but_last on an nn.Sequential(Conv2d, BatchNorm2d, ReLU, Flatten, Linear, ReLU, "
             f"Linear(bias=False)) with k=2: expected the two Linear layers trainable, got requires_grad "
             f"{got}{_freeze_hint(layers, 2)}")


# --- transfer: the head ------------------------------------------------------------------------------------
@pytest.mark.task("replace_head")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_replace_head_gives_a_new_trainable_head(student, device, dtype):
    fn = student_function(student, "replace_head")
    torch.manual_seed(0)
    model = ref.SmallCNN().to(device, dtype)
    ref.freeze_all_but_last(model, 0)
    before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("fc2")}
    out = fn(model, 5)
    check_true(out is model, "replace_head should change the model in place and return it")
    head = model.fc2
    check_true(isinstance(head, nn.Linear) and head.in_features == 64 and head.out_features == 5,
               f"replace_head(SmallCNN(), 5): model.fc2 should be a new nn.Linear(64, 5), got {describe(head)}")
    check_true(all(p.requires_grad for p in head.parameters()),
               f"replace_head: the new head must be trainable. Likely cause: {CAUSES['head_frozen']}")
    check_true(head.weight.device == torch.device(device) if device != "cuda" else head.weight.is_cuda,
               f"replace_head: the new head is on {head.weight.device}, the model on {device}; create it on the "
               "old head's device")
    check_true(head.weight.dtype == dtype, f"replace_head: the new head is {head.weight.dtype}, the model {dtype}")
    after = {k: v for k, v in model.state_dict().items() if not k.startswith("fc2")}
    check_true(before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before),
               "replace_head changed layers other than the head")
    x = images(3, device=device, dtype=dtype)
    model.eval()
    y = model(x)
    check_true(tuple(y.shape) == (3, 5), f"after replace_head(model, 5) the model outputs shape {tuple(y.shape)}; "
                                         "expected (3, 5)")
    seq = seq_model()
    fn(seq, 7)
    check_true(isinstance(seq[-1], nn.Linear) and seq[-1].out_features == 7 and seq[-1].in_features == 8,
               f"replace_head on an nn.Sequential ending in Linear(8, 3): expected its last layer to become "
               f"Linear(8, 7), got {describe(seq[-1])}")


# --- transfer: the optimizer -------------------------------------------------------------------------------
@pytest.mark.task("optimizer")
@pytest.mark.parametrize("k", [1, 3, 6])
def test_optimizer_holds_only_trainable_parameters(student, k):
    fn = student_function(student, "make_optimizer")
    model = ref.freeze_all_but_last(ref.SmallCNN(), k)
    opt = fn(model, 0.01)
    if not isinstance(opt, torch.optim.Adam):
        fail(f"make_optimizer should return a torch.optim.Adam, got {describe(opt)}")
    held = [p for group in opt.param_groups for p in group["params"]]
    trainable = [p for p in model.parameters() if p.requires_grad]
    if {id(p) for p in held} != {id(p) for p in trainable} or len(held) != len(trainable):
        hint = f"\n  Likely cause: {CAUSES['optimizer_all']}" if len(held) == len(list(model.parameters())) else ""
        fail(f"make_optimizer on a SmallCNN with the last {k} layers trainable holds {len(held)} parameters; "
             f"expected exactly the {len(trainable)} with requires_grad True{hint}")
    check_true(all(g["lr"] == 0.01 for g in opt.param_groups), "make_optimizer(model, lr=0.01): the learning rate "
                                                               "should be 0.01")


# --- transfer: fine-tuning ---------------------------------------------------------------------------------
def _bn_names(model):
    return [n for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@pytest.mark.task("fine_tune")
def test_train_mode_keeps_frozen_batchnorm_in_eval(student):
    fn = student_function(student, "train_mode")
    for k, frozen_bn in ((2, {"bn1", "bn2"}), (3, {"bn1"}), (6, set())):
        model = ref.freeze_all_but_last(ref.SmallCNN(), k).eval()
        fn(model)
        modes = {n: m.training for n, m in model.named_modules() if n}
        wrong = sorted(n for n in _bn_names(model) if modes[n] == (n in frozen_bn))
        if wrong:
            cause = CAUSES["bn_drift"] if any(n in frozen_bn for n in wrong) else \
                "a BatchNorm whose parameters train must be in training mode"
            fail(f"train_mode(model) with the last {k} layers trainable: BatchNorm layers {wrong} are in the wrong "
                 f"mode (frozen ones: {sorted(frozen_bn) or 'none'}). Likely cause: {cause}")
        others = [n for n, m in model.named_modules() if n and n not in _bn_names(model) and not modes[n]]
        check_true(model.training and not others, f"train_mode: the model and its layers {others} should be in "
                                                   "training mode (model.train() first)")


def _train_data(device, n=200, seed=10):
    x, y, _, _ = ref.experiment_data(device)
    return x[:n], y[:n]


def _fine_tune(student, model, x, y, epochs=1, lr=1e-2, seed=0):
    fn = student_function(student, "fine_tune")
    out = fn(model, x, y, epochs=epochs, lr=lr, batch_size=50, generator=gen(seed))
    check_true(out is model, "fine_tune should train the model in place and return it")
    return model


@pytest.mark.task("fine_tune")
def test_fine_tune_changes_only_the_trainable_layers(student, device):
    x, y = _train_data(device)
    for k in (2, 3):
        torch.manual_seed(0)
        model = ref.SmallCNN().to(device)
        with torch.no_grad():  # pretrained-looking statistics, so drifting ones show
            model.bn1.running_mean.fill_(0.3), model.bn1.running_var.fill_(2.0)
            model.bn2.running_mean.fill_(-0.2), model.bn2.running_var.fill_(0.5)
        ref.freeze_all_but_last(model, k)
        before = {name: t.clone() for name, t in model.state_dict().items()}
        _fine_tune(student, model, x, y)
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        for name, t in model.state_dict().items():
            changed = not torch.equal(t, before[name])
            layer = name.rsplit(".", 1)[0]
            layer_trains = any(p.startswith(layer + ".") for p in trainable)
            if "running" in name or "num_batches" in name:
                if changed and not layer_trains:
                    fail(f"fine_tune with the last {k} layers trainable: {name} of the frozen {layer} changed. Likely "
                         f"cause: {CAUSES['bn_drift']}")
                continue
            if name in trainable and not changed:
                fail(f"fine_tune with the last {k} layers trainable: {name} did not change; it should train")
            if name not in trainable and changed:
                fail(f"fine_tune with the last {k} layers trainable: the frozen {name} changed; only parameters with "
                     "requires_grad True may change")


@pytest.mark.task("fine_tune")
def test_fine_tune_learns(student):
    x, y = _train_data("cpu", n=300)
    torch.manual_seed(0)
    model = ref.SmallCNN()
    ref.freeze_all_but_last(model, 6)
    _fine_tune(student, model, x, y, epochs=5, lr=2e-3)
    model.eval()
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).double().mean().item()
    check_true(acc >= 0.9, f"fine_tune of a fresh SmallCNN on 300 digits for 5 epochs (Adam, lr 0.002, batch 50) "
                           f"reaches {acc:.1%} training accuracy; a working training loop reaches over 90%")


# --- predictions -------------------------------------------------------------------------------------------
PREDICTIONS = {  # variable: (answer, choices or None for a number, what it asks)
    "predict_flip_digits": ("b", "abc", "random horizontal flips when training on 300 digits"),
    "predict_noise_std": (0.5, None, "noise of std 0.3 then noise of std 0.4"),
    "predict_cutout_fraction": (64 / 784, None, "the fraction of pixels cutout(x, 8) zeroes on 28 x 28 images"),
    "predict_trainable_head": (64 * 5 + 5, None, "trainable parameters of a frozen SmallCNN with a new 5-class head"),
}


def _prediction(student, name):
    answer, choices, about = PREDICTIONS[name]
    mistakes = {
        "predict_noise_std": {"standard deviations do not add; variances of independent noises do "
                              "(sqrt(0.3**2 + 0.4**2))": 0.7},
        "predict_cutout_fraction": {"that is a percentage; give a fraction between 0 and 1": 100 * 64 / 784},
        "predict_trainable_head": {"the head has a bias too: 5 more parameters": 64 * 5,
                                   "that is the old 10-class head": 64 * 10 + 10},
    }.get(name)
    check_prediction(getattr(student, name), answer, f"{name} ({about})", choices=choices, mistakes=mistakes)


@pytest.mark.task("predictions")
def test_predict_flip_digits(student):
    _prediction(student, "predict_flip_digits")


@pytest.mark.task("predictions")
def test_predict_noise_std(student):
    _prediction(student, "predict_noise_std")


@pytest.mark.task("predictions")
def test_predict_cutout_fraction(student):
    _prediction(student, "predict_cutout_fraction")


@pytest.mark.task("predictions")
def test_predict_trainable_head(student):
    _prediction(student, "predict_trainable_head")
