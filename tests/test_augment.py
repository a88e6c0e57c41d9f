"""Tests for dtlib.augment: each op against torchvision, sampling statistics, recipes, seeding."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
import torch
import torchvision.transforms.functional as TF
from torchvision.transforms import RandomResizedCrop

from dtlib.augment import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    ViewMaker,
    ViewSpec,
    apply_view,
    augment,
    barlow_twins_views,
    multicrop_views,
    normalize,
    sample_crop_boxes,
    sample_jitter,
    sample_view_params,
)
from dtlib.ops import (
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    blur_kernel_size,
    color_jitter,
    gaussian_blur,
    hflip,
    resized_crop,
    solarize,
    to_grayscale,
)

ATOL = 2e-6  # float32 rounding differences between equivalent formulas
# A view with every random op off and a crop of the whole image: the identity before normalisation.
PLAIN = ViewSpec(size=8, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, gray_p=0.0)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on a shared 2-core CPU, OpenMP's spin-waits make these small ops several times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def gen(seed: int = 0) -> torch.Generator:
    """A seeded CPU generator."""
    return torch.Generator().manual_seed(seed)


def images(n: int = 6, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Float images in [0, 1]; the first three have tied channels and exact 0 / 1 to hit hue's edge cases."""
    x = torch.rand(max(n, 3), 3, size, size, generator=gen(seed))
    x[0] = x[0, :1]  # grey: r == g == b
    x[1, 1] = x[1, 0]  # r == g
    x[2] = (x[2] * 4).round() / 4  # many exact ties and exact 0 / 1
    return x[:n]


def unnormalize(v: torch.Tensor) -> torch.Tensor:
    """Undo the CIFAR-10 normalisation."""
    return v * torch.tensor(CIFAR10_STD).view(1, 3, 1, 1) + torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)


# ------------------------------------------------------------------------------------- ops vs torchvision


@pytest.mark.parametrize("size", [32, 16, 24])
def test_resized_crop_matches_torchvision(size: int) -> None:
    x = images(4, size=32)
    boxes = torch.tensor([[0, 0, 32, 32], [3, 5, 20, 17], [10, 2, 7, 30], [31, 0, 1, 1]])
    out = resized_crop(x, boxes, size)
    assert out.shape == (4, 3, size, size)
    for i, (t, l, h, w) in enumerate(boxes.tolist()):
        ref = TF.resized_crop(x[i], t, l, h, w, [size, size], antialias=False)
        torch.testing.assert_close(out[i], ref, atol=ATOL, rtol=0)


def test_hflip_matches_torchvision() -> None:
    x = images(4)
    mask = torch.tensor([True, False, True, False])
    out = hflip(x, mask)
    for i in range(4):
        torch.testing.assert_close(out[i], TF.hflip(x[i]) if mask[i] else x[i], atol=0, rtol=0)


@pytest.mark.parametrize(
    ("ours", "theirs", "factors"),
    [
        (adjust_brightness, TF.adjust_brightness, [0.0, 0.6, 1.0, 1.4]),
        (adjust_contrast, TF.adjust_contrast, [0.0, 0.6, 1.0, 1.4]),
        (adjust_saturation, TF.adjust_saturation, [0.0, 0.8, 1.0, 2.0]),
        (adjust_hue, TF.adjust_hue, [-0.5, -0.1, 0.0, 0.07, 0.3, 0.5]),
    ],
)
def test_color_ops_match_torchvision(ours, theirs, factors: list[float]) -> None:
    # One batch with a different factor per sample, compared image by image.
    x = images(len(factors))
    out = ours(x, torch.tensor(factors))
    for i, f in enumerate(factors):
        torch.testing.assert_close(out[i], theirs(x[i], f), atol=ATOL, rtol=0)


def test_hue_on_every_image_and_factor() -> None:
    # Every tie pattern against every factor, so no per-sample mix-up hides behind a lucky pairing.
    x = images(6)
    for f in (-0.45, -0.2, 0.15, 0.45):
        out = adjust_hue(x, torch.full((6,), f))
        for i in range(6):
            torch.testing.assert_close(out[i], TF.adjust_hue(x[i], f), atol=ATOL, rtol=0)


def test_grayscale_matches_torchvision() -> None:
    x = images(4)
    mask = torch.tensor([True, False, False, True])
    out = to_grayscale(x, mask)
    for i in range(4):
        ref = TF.rgb_to_grayscale(x[i], num_output_channels=3) if mask[i] else x[i]
        torch.testing.assert_close(out[i], ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_gaussian_blur_matches_torchvision(kernel_size: int) -> None:
    sigmas = [0.1, 0.7, 1.3, 2.0]
    x = images(4)
    out = gaussian_blur(x, torch.tensor(sigmas), kernel_size)
    for i, s in enumerate(sigmas):
        ref = TF.gaussian_blur(x[i], [kernel_size, kernel_size], [s, s])
        torch.testing.assert_close(out[i], ref, atol=ATOL, rtol=0)


def test_gaussian_blur_sigma_zero_is_identity() -> None:
    x = images(2)
    out = gaussian_blur(x, torch.tensor([0.0, 1.0]), 3)
    torch.testing.assert_close(out[0], x[0], atol=0, rtol=0)
    assert not torch.equal(out[1], x[1])


def test_solarize_matches_torchvision() -> None:
    x = images(4)
    mask = torch.tensor([True, False, True, False])
    out = solarize(x, mask)
    for i in range(4):
        ref = TF.solarize(x[i], 0.5) if mask[i] else x[i]
        torch.testing.assert_close(out[i], ref, atol=0, rtol=0)


def test_normalize_matches_torchvision() -> None:
    x = images(2)
    out = normalize(x, CIFAR10_MEAN, CIFAR10_STD)
    torch.testing.assert_close(out, TF.normalize(x, CIFAR10_MEAN, CIFAR10_STD), atol=ATOL, rtol=0)


def test_color_jitter_follows_each_samples_order() -> None:
    # All 24 orders in one batch; each sample must equal torchvision's ops applied in its own order.
    perms = torch.tensor(list(itertools.permutations(range(4))))  # (24, 4)
    x = images(24, size=8, seed=1)
    factors = torch.tensor([1.35, 0.7, 1.15, -0.08]).repeat(24, 1)
    out = color_jitter(x, factors, perms)
    ops = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
    for i, perm in enumerate(perms.tolist()):
        ref = x[i]
        for op in perm:
            ref = ops[op](ref, factors[i, op].item())
        torch.testing.assert_close(out[i], ref, atol=1e-5, rtol=0)


def test_identity_view_is_plain_normalisation() -> None:
    u8 = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8, generator=gen())
    out = augment(u8, PLAIN, gen())
    torch.testing.assert_close(out, TF.normalize(u8.float() / 255, CIFAR10_MEAN, CIFAR10_STD), atol=ATOL, rtol=0)


# ------------------------------------------------------------------------------------- shapes and ranges


@pytest.mark.parametrize("cifar", [True, False])
@pytest.mark.parametrize("recipe", ["bt", "dino"])
def test_recipe_views_shape_dtype_range(recipe: str, cifar: bool) -> None:
    specs = barlow_twins_views(cifar=cifar) if recipe == "bt" else multicrop_views(cifar=cifar)
    u8 = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=gen())
    views = ViewMaker(specs)(u8, gen())
    assert len(views) == len(specs)
    for v, spec in zip(views, specs):
        assert v.shape == (64, 3, spec.size, spec.size)
        assert v.dtype == torch.float32
        assert torch.isfinite(v).all()
        raw = unnormalize(v)
        assert raw.min() >= -1e-5 and raw.max() <= 1 + 1e-5


def test_recipes_follow_the_papers() -> None:
    bt = barlow_twins_views(cifar=False)
    assert [s.blur_p for s in bt] == [1.0, 0.1] and [s.solarize_p for s in bt] == [0.0, 0.2]
    assert bt[0].scale == (0.08, 1.0) and bt[0].jitter_p == 0.8 and bt[0].gray_p == 0.2
    assert all(s.blur_p == 0.0 for s in barlow_twins_views() + multicrop_views())
    dino = multicrop_views(n_local=4, cifar=False)
    assert len(dino) == 6 and [s.blur_p for s in dino] == [1.0, 0.1, 0.5, 0.5, 0.5, 0.5]
    assert [s.solarize_p for s in dino[:2]] == [0.0, 0.2]
    assert {s.size for s in dino[2:]} == {16} and dino[2].scale == (0.05, 0.4) and dino[0].scale == (0.4, 1.0)
    assert blur_kernel_size(32) == 3 and blur_kernel_size(224) == 23


def test_viewmaker_rejects_bad_n_global() -> None:
    with pytest.raises(ValueError):
        ViewMaker(barlow_twins_views(), n_global=3)


def test_float_input_is_rejected() -> None:
    # The contract is uint8; a float tensor would otherwise be scaled in place.
    with pytest.raises(TypeError):
        augment(torch.rand(2, 3, 8, 8), PLAIN)


# ------------------------------------------------------------------------------------------ statistics

N = 4000


def share(mask: torch.Tensor) -> float:
    """Fraction of True."""
    return mask.float().mean().item()


def tol(p: float) -> float:
    """Five binomial standard errors at N draws."""
    return 5 * math.sqrt(p * (1 - p) / N)


def test_flip_gray_solarize_shares_in_the_output() -> None:
    # Read each op off the produced views (not the parameters), so the wiring is checked too.
    x = torch.rand(N, 3, 8, 8, generator=gen())
    g = gen(1)
    flipped = apply_view(x, sample_view_params(N, 8, 8, replace(PLAIN, flip_p=0.5), g), replace(PLAIN, flip_p=0.5))
    is_flip = (unnormalize(flipped) - x.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-5
    spec = replace(PLAIN, gray_p=0.2)
    gray = unnormalize(apply_view(x, sample_view_params(N, 8, 8, spec, g), spec))
    is_gray = (gray - gray[:, :1]).abs().amax(dim=(1, 2, 3)) < 1e-5
    spec = replace(PLAIN, solarize_p=0.2)
    solar = unnormalize(apply_view(x, sample_view_params(N, 8, 8, spec, g), spec))
    is_solar = (solar - x).abs().amax(dim=(1, 2, 3)) > 1e-3
    assert abs(share(is_flip) - 0.5) < tol(0.5)
    assert abs(share(is_gray) - 0.2) < tol(0.2)
    assert abs(share(is_solar) - 0.2) < tol(0.2)


def test_jitter_share_and_order_are_uniform() -> None:
    spec = ViewSpec()
    factors, order = sample_jitter(N, spec, gen())
    jittered = (factors != torch.tensor([1.0, 1.0, 1.0, 0.0])).any(dim=1)
    assert abs(share(jittered) - 0.8) < tol(0.8)
    f = factors[jittered]
    assert f[:, :3].min() >= 0.6 and f[:, :2].max() <= 1.4 and f[:, 2].max() <= 1.2 and f[:, 3].abs().max() <= 0.1
    assert torch.equal(order.sort(dim=1).values, torch.arange(4).expand(N, 4))  # permutations
    for pos, op in itertools.product(range(4), range(4)):
        assert abs(share(order[:, pos] == op) - 0.25) < tol(0.25)


@pytest.mark.parametrize(("side", "scale"), [(32, (0.2, 1.0)), (32, (0.08, 1.0)), (224, (0.08, 1.0))])
def test_crop_boxes_fit_scale_and_ratio(side: int, scale: tuple[float, float]) -> None:
    ratio = (3 / 4, 4 / 3)
    top, left, h, w = sample_crop_boxes(N, side, side, scale, ratio, gen()).double().unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= side).all() and (left + w <= side).all()
    # Widths and heights are rounded to whole pixels, so allow half a pixel on each side.
    slack = 0.5 * (w + h) + 0.25
    area = h * w
    assert (area >= scale[0] * side**2 - slack).all() and (area <= scale[1] * side**2 + slack).all()
    log_slack = 0.5 / (w - 0.5) + 0.5 / (h - 0.5)
    log_r = torch.log(w / h)
    assert (log_r >= math.log(ratio[0]) - log_slack).all() and (log_r <= math.log(ratio[1]) + log_slack).all()
    # Same distribution as torchvision's sampler: compare means of area fraction and log-ratio.
    torch.manual_seed(0)
    ref = torch.tensor(
        [RandomResizedCrop.get_params(torch.empty(1, side, side), list(scale), list(ratio)) for _ in range(N)]
    ).double()
    ref_area = ref[:, 2] * ref[:, 3]
    frac, ref_frac = area / side**2, ref_area / side**2
    assert abs(frac.mean() - ref_frac.mean()) < 5 * ref_frac.std() / math.sqrt(N / 2)
    ref_log_r = torch.log(ref[:, 3] / ref[:, 2])
    assert abs(log_r.mean() - ref_log_r.mean()) < 5 * ref_log_r.std() / math.sqrt(N / 2)


@pytest.mark.parametrize(("height", "width"), [(32, 32), (32, 64), (64, 20)])
def test_crop_fallback_matches_torchvision(height: int, width: int) -> None:
    # An impossible area range forces the central fallback crop, which is deterministic.
    scale, ratio = (2.0, 3.0), (3 / 4, 4 / 3)
    boxes = sample_crop_boxes(5, height, width, scale, ratio, gen())
    ref = RandomResizedCrop.get_params(torch.empty(1, height, width), list(scale), list(ratio))
    assert (boxes == torch.tensor(ref)).all()


# ---------------------------------------------------------------------------------------------- seeding


def test_same_seed_same_views_other_seed_other_views() -> None:
    u8 = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=gen())
    vm = ViewMaker(multicrop_views(n_local=2))
    a, b, c = vm(u8, gen(7)), vm(u8, gen(7)), vm(u8, gen(8))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert all(not torch.equal(x, z) for x, z in zip(a, c))
    assert not torch.equal(a[0], a[1])  # two views of one batch differ


def test_augment_is_sample_then_apply() -> None:
    # augment() must draw exactly sample_view_params' parameters, so tests of either cover both.
    u8 = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8, generator=gen())
    spec = barlow_twins_views(cifar=False)[1]
    ours = augment(u8, spec, gen(3))
    ref = apply_view(u8.float() / 255, sample_view_params(20, 32, 32, spec, gen(3)), spec)
    torch.testing.assert_close(ours, ref, atol=0, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_generator_reproducible() -> None:
    u8 = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, device="cuda")
    vm = ViewMaker(barlow_twins_views(cifar=False))
    a = vm(u8, torch.Generator(device="cuda").manual_seed(1))
    b = vm(u8, torch.Generator(device="cuda").manual_seed(1))
    assert all(v.device.type == "cuda" and torch.equal(x, v) for x, v in zip(a, b))
    assert all(torch.isfinite(v).all() for v in a)


def _views_one_spec_at_a_time(vm: ViewMaker, u8: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
    """What ViewMaker did before it grouped equal specs: one apply_view per spec."""
    x = u8.float().div_(255.0)
    params = [sample_view_params(len(u8), *u8.shape[-2:], s, generator) for s in vm.specs]
    return [apply_view(x, p, s, vm.mean, vm.std, vm.memory_format) for s, p in zip(vm.specs, params)]


@pytest.mark.parametrize("cifar, channels_last", [(True, False), (False, True)])
def test_grouped_equal_specs_give_bit_identical_views(cifar: bool, channels_last: bool) -> None:
    u8 = torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8, generator=gen())
    vm = ViewMaker(multicrop_views(n_local=4, cifar=cifar), channels_last=channels_last)
    grouped, single = vm(u8, gen(5)), _views_one_spec_at_a_time(vm, u8, gen(5))
    assert len(grouped) == 6
    for a, b in zip(grouped, single, strict=True):
        assert torch.equal(a, b)
        assert a.is_contiguous(memory_format=vm.memory_format)


def test_equal_local_specs_are_augmented_in_one_call(monkeypatch) -> None:
    import dtlib.augment as augment_module

    calls = []
    real = augment_module.apply_view
    monkeypatch.setattr(augment_module, "apply_view", lambda x, *a, **k: calls.append(len(x)) or real(x, *a, **k))
    ViewMaker(multicrop_views(n_local=6))(torch.zeros(4, 3, 32, 32, dtype=torch.uint8), gen())
    assert calls == [4, 4, 24]  # two different global views, then the six local crops at once
