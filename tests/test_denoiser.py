"Behavioural tests of ld4lg_edu.denoiser (the notebook 05_denoiser holds the same ideas next to the code)."
import json

import pytest
import torch
import torch.nn.functional as F

from ld4lg_edu.denoiser import Denoiser, DenoiserConfig, skip_pairs
from ld4lg_edu.schedule import log_snr_from_alpha


def _model(seed=0, **overrides):
    torch.manual_seed(seed)
    cfg = DenoiserConfig.preset("tiny", **overrides)
    return Denoiser(cfg).eval(), cfg


def _inputs(cfg, B=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, cfg.num_latents, cfg.latent_dim, generator=g), torch.rand(B, generator=g)


def _wake(model):
    "Random output weights (as after training) so that internal differences reach the output."
    with torch.no_grad():
        model.output_proj.weight.normal_(std=0.5)
    return model


def test_config_json_round_trip_and_presets():
    cfg = DenoiserConfig.preset("paper", num_classes=4, cond_dim=768, adaln=True)
    assert DenoiserConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    p = DenoiserConfig.preset("paper")
    assert (p.depth, p.width, p.heads, p.num_latents, p.latent_dim) == (12, 768, 12, 32, 64)
    with pytest.raises(ValueError, match="unknown DenoiserConfig keys"):
        DenoiserConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="divisible by heads"):
        DenoiserConfig.preset("tiny", width=30, heads=4)


@pytest.mark.parametrize("overrides", [{}, dict(num_classes=3), dict(cond_dim=5), dict(adaln=True, self_condition=False),
                                       dict(dense_skip=False), dict(num_classes=2, cond_dim=6, adaln=True)])
def test_shapes_and_zero_output_at_init(overrides):
    model, cfg = _model(**overrides)
    noisy, alpha = _inputs(cfg)
    kwargs = {}
    if cfg.cond_dim: kwargs["cond"] = torch.randn(4, 3, cfg.cond_dim)
    with torch.no_grad():
        v_pred = model(noisy, alpha, **kwargs)
    assert v_pred.shape == noisy.shape
    assert torch.equal(v_pred, torch.zeros_like(v_pred))


def test_log_snr_is_finite_at_the_ends():
    lam = log_snr_from_alpha(torch.tensor([0.0, 0.5, 1.0]))
    assert torch.isfinite(lam).all() and lam[1].abs() < 1e-6 and lam[0] < 0 < lam[2]


def test_time_conditioning_changes_output():
    model, cfg = _model()
    _wake(model)
    noisy, _ = _inputs(cfg)
    with torch.no_grad():
        a = model(noisy, torch.full((4,), 0.1))
        b = model(noisy, torch.full((4,), 0.9))
    assert not torch.allclose(a, b)


def test_skips_are_wired_last_in_first_out():
    model, cfg = _model(depth=8, num_skips=3)
    outs, skip_inputs = {}, {}
    for i, block in enumerate(model.blocks):
        block.register_forward_hook(lambda m, a, o, i=i: outs.__setitem__(i, o))
    first = cfg.depth - cfg.skips
    for j, merge in enumerate(model.skip_merges):
        merge.register_forward_hook(lambda m, a, o, j=j: skip_inputs.__setitem__(first + j, a[0][..., cfg.width:]))
    with torch.no_grad():
        model(*_inputs(cfg))
    wired = sorted((next(s for s, o in outs.items() if torch.equal(o, x)), t) for t, x in skip_inputs.items())
    assert wired == skip_pairs(8, 3) == [(0, 7), (1, 6), (2, 5)]
    assert len(model.skip_merges) == 3
    assert len(_model(dense_skip=False)[0].skip_merges) == 0
    assert len(_model(depth=6)[0].skip_merges) == 3  # default: depth // 2


def test_null_class_used_when_labels_none():
    model, cfg = _model(num_classes=3)
    _wake(model)
    noisy, alpha = _inputs(cfg)
    with torch.no_grad():
        none = model(noisy, alpha)
        null = model(noisy, alpha, class_labels=torch.full((4,), model.null_class))
        real = model(noisy, alpha, class_labels=torch.tensor([0, 1, 2, 0]))
    assert model.null_class == model.num_classes == 3
    assert torch.allclose(none, null)
    assert not torch.allclose(none, real)


def test_self_condition_placeholder_is_learned_not_zero():
    model, cfg = _model()
    _wake(model)
    noisy, alpha = _inputs(cfg)
    with torch.no_grad():
        none = model(noisy, alpha)
        zeros = model(noisy, alpha, self_cond=torch.zeros_like(noisy))
        estimate = model(noisy, alpha, self_cond=torch.randn_like(noisy))
    assert model.self_condition
    assert not torch.allclose(none, zeros) and not torch.allclose(zeros, estimate)


def test_cross_attention_mask_respected():
    model, cfg = _model(cond_dim=6)
    _wake(model)
    noisy, alpha = _inputs(cfg)
    cond = torch.randn(4, 5, 6)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 0, 1, 0, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    changed = torch.where(mask[..., None], cond, 1e3 * torch.randn_like(cond))
    with torch.no_grad():
        out = model(noisy, alpha, cond=cond, cond_mask=mask)
        out_changed = model(noisy, alpha, cond=changed, cond_mask=mask)
        no_cond = model(noisy, alpha)
        visible_changed = model(noisy, alpha, cond=cond + 1.0, cond_mask=mask)
    assert torch.allclose(out, out_changed, atol=1e-5)
    assert torch.allclose(out[2], no_cond[2], atol=1e-5)  # fully masked row == no condition (null token only)
    assert not torch.allclose(out[[0, 1, 3]], visible_changed[[0, 1, 3]])


def test_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    model = Denoiser(DenoiserConfig.preset("tiny", num_classes=3, cond_dim=6, adaln=True, dropout=0.1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    noisy, alpha = _inputs(model.config)
    kwargs = dict(class_labels=torch.tensor([0, 1, 2, 3]), cond=torch.randn(4, 3, 6))
    target = torch.randn_like(noisy)
    for _ in range(2):
        opt.zero_grad()
        F.mse_loss(model(noisy, alpha, **kwargs), target).backward()
        opt.step()
    dead = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert dead == []


@pytest.mark.parametrize("call, message", [
    (lambda m, n, a: m(n[:, :5], a), "(B, ℓ, d_ae)"),
    (lambda m, n, a: m(n, a[:2]), "alpha must have shape"),
    (lambda m, n, a: m(n, a + 2), "[0, 1]"),
    (lambda m, n, a: m(n, a, class_labels=torch.tensor([0, 1, 4, 0])), "[0, 3]"),
    (lambda m, n, a: m(n, a, class_labels=torch.tensor([0.0, 1, 2, 0])), "integer tensor"),
    (lambda m, n, a: m(n, a, self_cond=n[:2]), "self_cond must have the shape"),
    (lambda m, n, a: m(n, a, cond_mask=torch.ones(4, 2, dtype=torch.bool)), "cond_mask given without cond"),
])
def test_bad_input_raises_value_error(call, message):
    model, cfg = _model(num_classes=3)
    noisy, alpha = _inputs(cfg)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        call(model, noisy, alpha)


def test_labels_to_unconditional_model_raise():
    model, cfg = _model()
    noisy, alpha = _inputs(cfg)
    with pytest.raises(ValueError, match="unconditional"):
        model(noisy, alpha, class_labels=torch.zeros(4, dtype=torch.long))


def test_self_cond_mask_mixes_rows():
    model, cfg = _model()
    _wake(model)
    noisy, alpha = _inputs(cfg)
    estimate = torch.randn_like(noisy)
    rows = torch.tensor([True, False, False, True])
    with torch.no_grad():
        mixed = model(noisy, alpha, self_cond=estimate, self_cond_mask=rows)
        with_estimate = model(noisy, alpha, self_cond=estimate)
        without = model(noisy, alpha)
    assert torch.allclose(mixed[rows], with_estimate[rows]) and torch.allclose(mixed[~rows], without[~rows])
    with pytest.raises(ValueError, match="self_cond_mask given without self_cond"):
        model(noisy, alpha, self_cond_mask=rows)
