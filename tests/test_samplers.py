"""Tests for ld4lg_edu.samplers: correctness against an exact toy denoiser and against diffusers, and the driver's plumbing."""
import warnings

import pytest
import torch
from torch import nn

from ld4lg_edu.samplers import (SAMPLERS, Conditioning, DDIMSampler, DDPMSampler, DPMSolverPP2MSampler, get_sampler, guided_v,
                                sample_latents)
from ld4lg_edu.samplers import Sampler
from ld4lg_edu.schedule import CosineSchedule, SigmoidSchedule, eps_from_v, q_sample, v_from_x0, x0_from_v
from ld4lg_edu.toy import GaussianMixture, MixtureDenoiser, mode_stats, transport_1d, wasserstein_1d

COSINE = CosineSchedule()
MIX1 = GaussianMixture([0.3, 0.7], [[-1.0], [1.5]], [0.15, 0.3])
MIX2 = GaussianMixture([0.2, 0.3, 0.5], [[-2.0, 0.0], [1.0, 1.5], [1.5, -1.5]], [0.3, 0.5, 0.2])
EXACT2 = MixtureDenoiser(MIX2, class_conditional=True)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    "Small tensors: one thread is faster than two competing ones."
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- correctness on the exact toy

@pytest.mark.parametrize("name,steps,kwargs,var_tol", [
    ("ddpm", 400, {}, 0.08),
    ("ddpm", 400, {"variance": "forward"}, 0.08),
    ("ddim", 100, {}, 0.06),
    ("ddim", 200, {"eta": 0.5}, 0.08),
    ("dpmpp2m", 30, {}, 0.06),
])
def test_samples_match_the_mixture(name, steps, kwargs, var_tol):
    n = 20_000
    latents = sample_latents(EXACT2, COSINE, (n, 1, 2), sampler=name, steps=steps, generator=11, progress=False, **kwargs).latents
    stats = mode_stats(MIX2, latents)
    # weight s.e. ≈ 0.0035, mean s.e. ≤ 0.008, var relative s.e. ≤ 0.016 at n = 20k; the rest of each tolerance is discretisation
    torch.testing.assert_close(stats["weight"], MIX2.weights, atol=0.015, rtol=0)
    torch.testing.assert_close(stats["mean"], MIX2.means, atol=0.04, rtol=0)
    torch.testing.assert_close(stats["var"] / MIX2.stds ** 2, torch.ones(3, dtype=torch.float64), atol=var_tol, rtol=0)


def test_sigmoid_schedule_also_works():
    latents = sample_latents(EXACT2, SigmoidSchedule(), (10_000, 1, 2), sampler="dpmpp2m", steps=100, generator=0, progress=False).latents
    stats = mode_stats(MIX2, latents)
    torch.testing.assert_close(stats["weight"], MIX2.weights, atol=0.02, rtol=0)
    torch.testing.assert_close(stats["var"] / MIX2.stds ** 2, torch.ones(3, dtype=torch.float64), atol=0.08, rtol=0)


def test_class_labels_pick_components_and_w0_is_unconditional():
    for k in range(3):
        stats = mode_stats(MIX2, sample_latents(EXACT2, COSINE, (3000, 1, 2), steps=25, class_labels=k, generator=k, progress=False).latents)
        assert stats["weight"][k] > 0.99
    # w = 0 keeps only the unconditional prediction: the whole mixture again, whatever the label
    stats = mode_stats(MIX2, sample_latents(EXACT2, COSINE, (10_000, 1, 2), steps=30, class_labels=0, guidance_scale=0.0,
                                            generator=0, progress=False).latents)
    torch.testing.assert_close(stats["weight"], MIX2.weights, atol=0.02, rtol=0)
    # w > 1 sharpens: the class's samples get narrower than the component itself
    stats = mode_stats(MIX2, sample_latents(EXACT2, COSINE, (5000, 1, 2), steps=30, class_labels=1, guidance_scale=3.0,
                                            generator=0, progress=False).latents)
    assert stats["weight"][1] > 0.99 and stats["var"][1] < 0.9 * MIX2.stds[1] ** 2


def _path_errors(steps):
    n = 4000
    z1 = torch.randn(n, 1, 1, generator=torch.Generator().manual_seed(0))
    ode_end = transport_1d(MIX1.noised(COSINE.alpha(1.0).item()), MIX1, z1.double()).float()
    out = {}
    for name in ("ddim", "dpmpp2m"):
        latents = sample_latents(MixtureDenoiser(MIX1), COSINE, (n, 1, 1), sampler=name, steps=steps, noise=z1, progress=False).latents
        out[name] = ((latents - ode_end).abs().mean().item(), wasserstein_1d(MIX1, latents))
    return out


@pytest.mark.parametrize("steps", [10, 15, 20])
def test_dpmpp2m_beats_ddim(steps):
    err = _path_errors(steps)
    assert err["dpmpp2m"][0] < 0.7 * err["ddim"][0]  # per-sample distance to the exact ODE endpoint
    assert err["dpmpp2m"][1] < err["ddim"][1]        # Wasserstein-1 to the target


def test_convergence_orders():
    "DDIM is first order, DPM-Solver++(2M) second order, in the per-sample ODE error."
    e20, e40 = _path_errors(20), _path_errors(40)
    assert 1.6 < e20["ddim"][0] / e40["ddim"][0] < 2.6
    assert e20["dpmpp2m"][0] / e40["dpmpp2m"][0] > 3.0


def test_point_mass_is_reproduced_exactly():
    "If the data is one point, every sampler must return that point (the ideal x̂0 is the point itself)."
    x_star = torch.randn(1, 4, 3)

    class PointMass(nn.Module):
        num_classes, null_class, self_condition = 0, 0, False
        def forward(self, noisy, alpha, **kw):
            return v_from_x0(noisy, x_star.expand_as(noisy), alpha)

    for name in SAMPLERS:
        out = sample_latents(PointMass(), COSINE, (5, 4, 3), sampler=name, steps=7, generator=0, progress=False)
        torch.testing.assert_close(out.latents, x_star.expand(5, 4, 3), atol=1e-5, rtol=0)


# ---------------------------------------------------------------- the step rules

def test_ddim_step_lands_on_the_forward_point():
    g = torch.Generator().manual_seed(0)
    x_star, eps = torch.randn(2, 4, 3, generator=g), torch.randn(2, 4, 3, generator=g)
    for name in ("ddim", "dpmpp2m"):
        s = get_sampler(name, COSINE).set_timesteps(5)
        noisy = q_sample(x_star, s.alphas[0].float(), eps)
        out = s.step(v_from_x0(noisy, x_star, s.alphas[0].item()), 0, noisy)
        torch.testing.assert_close(out.noisy, q_sample(x_star, s.alphas[1].float(), eps), atol=1e-5, rtol=0)


def test_update_rules_get_x0_and_eps_from_the_conversions_of_chapter_04():
    "Every sampler's own move receives x̂0 and ε̂ made from v̂ by x0_from_v / eps_from_v; the last step returns x̂0."
    class Spy(Sampler):
        def _update(self, x0_pred, eps_pred, noisy, index, generator):
            self.seen = (x0_pred, eps_pred)
            return noisy
    spy = Spy(COSINE).set_timesteps(4)
    g = torch.Generator().manual_seed(1)
    noisy, v = torch.randn(2, 4, 3, generator=g), torch.randn(2, 4, 3, generator=g)
    for i in range(3):
        out = spy.step(v, i, noisy)
        alpha_t = spy.alphas[i].item()
        assert torch.equal(spy.seen[0], x0_from_v(noisy, v, alpha_t)) and torch.equal(out.x0_pred, spy.seen[0])
        assert torch.equal(spy.seen[1], eps_from_v(noisy, v, alpha_t))
    del spy.seen
    last = spy.step(v, 3, noisy)
    assert not hasattr(spy, "seen") and torch.equal(last.noisy, last.x0_pred)  # σ_N = 0: no update rule runs


def test_ddpm_equals_ddim_eta_one_and_posterior_variance():
    ddpm, ddim1 = DDPMSampler(COSINE).set_timesteps(8), DDIMSampler(COSINE, eta=1.0).set_timesteps(8)
    g = torch.Generator().manual_seed(1)
    noisy, v = torch.randn(3, 5, 2, generator=g), torch.randn(3, 5, 2, generator=g)
    for i in range(7):
        a = ddpm.step(v, i, noisy, torch.Generator().manual_seed(i)).noisy
        b = ddim1.step(v, i, noisy, torch.Generator().manual_seed(i)).noisy
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    # the spread of z_s around its mean is the posterior std √β̃
    i, n = 3, 200_000
    z = torch.zeros(n, 1, 1)
    x0 = torch.ones(n, 1, 1)
    at, as_ = ddpm.alphas[i].item(), ddpm.alphas[i + 1].item()
    draws = ddpm.step(v_from_x0(z, x0, at), i, z, torch.Generator().manual_seed(0)).noisy
    beta_tilde = (1 - at / as_) * (1 - as_) / (1 - at)
    assert abs(draws.var().item() / beta_tilde - 1) < 0.02


def _alphas_cumprod(T=1000):
    return COSINE.alpha(torch.arange(1, T + 1, dtype=torch.float64) / T)


@pytest.mark.parametrize("which", ["ddim", "dpmpp2m"])
def test_matches_diffusers(which):
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if which == "ddim":
            ref = DDIMScheduler(num_train_timesteps=1000, prediction_type="v_prediction", timestep_spacing="trailing",
                                clip_sample=False, set_alpha_to_one=True)
        else:
            ref = DPMSolverMultistepScheduler(num_train_timesteps=1000, prediction_type="v_prediction", algorithm_type="dpmsolver++",
                                              solver_order=2, timestep_spacing="trailing", final_sigmas_type="zero")
    ref.alphas_cumprod = _alphas_cumprod()
    steps = 10
    with warnings.catch_warnings():  # diffusers converts the float64 table through NumPy with a deprecated call
        warnings.simplefilter("ignore")
        ref.set_timesteps(steps)
    ours, free_run = get_sampler(which, COSINE).set_timesteps(steps), get_sampler(which, COSINE).set_timesteps(steps)
    z = torch.randn(16, 3, 2, generator=torch.Generator().manual_seed(0))
    z_free = z.clone()
    for i, k in enumerate(ref.timesteps):
        assert abs(ref.alphas_cumprod[k].item() - ours.alphas[i].item()) < 1e-12
        alpha = torch.full((16,), ours.alphas[i].item())
        v = EXACT2(z, alpha)
        z_ref = ref.step(v, k, z).prev_sample
        torch.testing.assert_close(ours.step(v, i, z).noisy, z_ref, atol=1e-5, rtol=0)  # one step, same inputs
        z_free = free_run.step(EXACT2(z_free, alpha), i, z_free).noisy                  # our own trajectory
        z = z_ref
    torch.testing.assert_close(z_free, z, atol=1e-4, rtol=0)


@pytest.mark.parametrize("variance,diffusers_type", [("posterior", "fixed_small"), ("forward", "fixed_large")])
def test_ddpm_matches_diffusers_with_shared_noise(variance, diffusers_type):
    from diffusers import DDPMScheduler
    ref = DDPMScheduler(num_train_timesteps=1000, prediction_type="v_prediction", timestep_spacing="trailing",
                        clip_sample=False, variance_type=diffusers_type)
    ref.alphas_cumprod = _alphas_cumprod()
    ref.set_timesteps(10)
    ours = DDPMSampler(COSINE, variance=variance).set_timesteps(10)
    z = torch.randn(8, 3, 2, generator=torch.Generator().manual_seed(0))
    # diffusers' fixed_large adds noise even on its last step (to α = 1); ours returns x̂0 there, so stop before it
    for i, k in enumerate(ref.timesteps[:-1]):
        v = EXACT2(z, torch.full((8,), ours.alphas[i].item()))
        a = ref.step(v, k, z, generator=torch.Generator().manual_seed(i)).prev_sample
        b = ours.step(v, i, z, generator=torch.Generator().manual_seed(i)).noisy
        torch.testing.assert_close(b, a, atol=1e-5, rtol=0)
        z = a


def test_sampler_errors():
    with pytest.raises(ValueError, match=r"\['ddim', 'ddpm', 'dpmpp2m'\]"):
        get_sampler("plms", COSINE)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match=">= 1"):
            get_sampler("ddim", COSINE).set_timesteps(bad)
    with pytest.raises(RuntimeError, match="set_timesteps"):
        DDIMSampler(COSINE).step(torch.zeros(1, 2), 0, torch.zeros(1, 2))
    s = DPMSolverPP2MSampler(COSINE).set_timesteps(5)
    s.step(torch.zeros(1, 2), 0, torch.zeros(1, 2))
    with pytest.raises(ValueError, match="in order"):
        s.step(torch.zeros(1, 2), 2, torch.zeros(1, 2))
    with pytest.raises(TypeError, match="unexpected arguments"):
        get_sampler("ddpm", COSINE, eta=0.3)
    with pytest.raises(TypeError, match="NoiseSchedule"):
        DDIMSampler(42)
    assert get_sampler("ddim", "cosine").schedule == COSINE


# ---------------------------------------------------------------- the driver

class Recorder(nn.Module):
    "v = 0.1 z + (label + 1) + cond_mean; records every call."
    def __init__(self, num_classes=3, self_condition=False):
        super().__init__()
        self.num_classes, self.null_class, self.self_condition = num_classes, num_classes, self_condition
        self.calls = []
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, noisy, alpha, self_cond=None, class_labels=None, cond=None, cond_mask=None):
        self.calls.append(dict(batch=noisy.shape[0], self_cond=None if self_cond is None else self_cond.clone(),
                               labels=class_labels, cond=cond, cond_mask=cond_mask, alpha=alpha.clone(), training=self.training))
        out = 0.1 * noisy
        if class_labels is not None: out = out + (class_labels.float() + 1)[:, None, None]
        if cond is not None: out = out + cond.mean((1, 2))[:, None, None]
        return out


@pytest.mark.parametrize("w", [0.0, 2.5, 5.0])
def test_guidance_formula_one_batched_call(w):
    rec = Recorder()
    labels = torch.tensor([0, 2])
    out = sample_latents(rec, COSINE, (2, 4, 3), sampler="ddim", steps=4, class_labels=labels, guidance_scale=w,
                         record_trajectory=True, generator=0, progress=False)
    assert len(rec.calls) == 4 and all(c["batch"] == 4 for c in rec.calls)
    assert rec.calls[0]["labels"].tolist() == [0, 2, 3, 3]
    traj = out.trajectory
    for i in range(4):
        z = traj.noisy[i]
        v = 0.1 * z + (w * (labels.float() + 1) + (1 - w) * 4.0)[:, None, None]
        torch.testing.assert_close(traj.x0_pred[i], x0_from_v(z, v, traj.alpha[i].item()), atol=1e-5, rtol=0)


def test_no_guidance_no_doubling_and_null_label_for_unlabelled_class_model():
    rec = Recorder()
    sample_latents(rec, COSINE, (2, 4, 3), steps=3, class_labels=[1, 2], generator=0, progress=False)
    assert all(c["batch"] == 2 for c in rec.calls) and rec.calls[0]["labels"].tolist() == [1, 2]
    rec = Recorder()
    sample_latents(rec, COSINE, (2, 4, 3), steps=3, generator=0, progress=False)
    assert rec.calls[0]["labels"].tolist() == [3, 3]  # a class model sampled without a class gets the null class
    rec = Recorder(num_classes=0)
    sample_latents(rec, COSINE, (2, 4, 3), steps=3, generator=0, progress=False)
    assert rec.calls[0]["labels"] is None


def test_guidance_with_cross_attention_cond():
    rec = Recorder(num_classes=0)
    cond, mask = torch.full((2, 5, 7), 2.0), torch.ones(2, 5, dtype=torch.bool)
    out = sample_latents(rec, COSINE, (2, 4, 3), steps=3, cond=cond, cond_mask=mask, guidance_scale=3.0,
                         record_trajectory=True, generator=0, progress=False)
    assert len(rec.calls) == 6  # conditional + unconditional call per step
    assert rec.calls[0]["cond"] is not None and rec.calls[0]["cond_mask"] is not None and rec.calls[1]["cond"] is None
    z = out.trajectory.noisy[0]
    v = 0.1 * z + 3.0 * 2.0  # w·(0.1z + 2) + (1-w)·0.1z
    torch.testing.assert_close(out.trajectory.x0_pred[0], x0_from_v(z, v, out.trajectory.alpha[0].item()), atol=1e-5, rtol=0)


def test_self_conditioning_feeds_previous_x0():
    for w in (1.0, 2.0):
        rec = Recorder(self_condition=True)
        out = sample_latents(rec, COSINE, (2, 4, 3), steps=5, class_labels=0, guidance_scale=w, record_trajectory=True,
                             generator=0, progress=False)
        assert rec.calls[0]["self_cond"] is None
        for i in range(1, 5):
            expected = out.trajectory.x0_pred[i - 1]
            if w != 1.0: expected = torch.cat([expected, expected])  # both halves of the guided batch see it
            torch.testing.assert_close(rec.calls[i]["self_cond"], expected)
    rec = Recorder(self_condition=False)
    sample_latents(rec, COSINE, (2, 4, 3), steps=3, generator=0, progress=False)
    assert all(c["self_cond"] is None for c in rec.calls)


def test_trajectory_and_eval_mode():
    rec = Recorder().train()
    out = sample_latents(rec, COSINE, (3, 4, 2), sampler="dpmpp2m", steps=6, record_trajectory=True, generator=0, progress=False)
    traj = out.trajectory
    assert len(traj) == 6
    assert traj.t.shape == traj.alpha.shape == (6,)
    assert traj.noisy.shape == traj.x0_pred.shape == (6, 3, 4, 2)
    torch.testing.assert_close(traj.t, torch.linspace(1, 0, 7)[:-1])
    torch.testing.assert_close(traj.alpha, COSINE.alpha(traj.t), atol=1e-7, rtol=0)
    assert (traj.alpha[1:] > traj.alpha[:-1]).all()
    torch.testing.assert_close(rec.calls[2]["alpha"], traj.alpha[2].expand(3))
    torch.testing.assert_close(out.latents, traj.x0_pred[-1])
    assert not any(c["training"] for c in rec.calls) and rec.training
    assert sample_latents(rec, COSINE, (3, 4, 2), steps=2, progress=False).trajectory is None


def test_training_mode_comes_back_after_a_failed_run():
    class NaNAtStep1(Recorder):
        def forward(self, noisy, alpha, **kw):
            out = super().forward(noisy, alpha, **kw)
            return out * float("nan") if len(self.calls) > 1 else out
    model = NaNAtStep1().train()
    with pytest.raises(RuntimeError, match="at step 1 of 4"):
        sample_latents(model, COSINE, (3, 4, 2), steps=4, generator=0, progress=False)
    assert model.training and not any(c["training"] for c in model.calls)


def test_reproducibility():
    def run(**kw):
        return sample_latents(EXACT2, COSINE, (32, 2, 2), steps=8, progress=False, **kw).latents
    z1 = torch.randn(32, 2, 2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(run(sampler="ddim", noise=z1, generator=1), run(sampler="ddim", noise=z1, generator=2))
    assert not torch.allclose(run(sampler="ddim", noise=z1), run(sampler="ddim", noise=torch.randn(32, 2, 2)))
    for name in SAMPLERS:
        assert torch.equal(run(sampler=name, generator=3), run(sampler=name, generator=torch.Generator().manual_seed(3)))
        assert not torch.allclose(run(sampler=name, generator=3), run(sampler=name, generator=4))
    assert not torch.allclose(run(sampler="ddpm", noise=z1, generator=3), run(sampler="ddpm", noise=z1, generator=4))


def test_driver_errors():
    uncond, cond_model = Recorder(num_classes=0), Recorder(num_classes=3)
    with pytest.raises(ValueError, match="unconditional"):
        sample_latents(uncond, COSINE, (2, 4, 3), guidance_scale=2.0, progress=False)
    with pytest.raises(ValueError, match="drop class_labels"):
        sample_latents(uncond, COSINE, (2, 4, 3), class_labels=[0, 0], progress=False)
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        sample_latents(cond_model, COSINE, (2, 4, 3), class_labels=[0, 3], progress=False)
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        sample_latents(cond_model, COSINE, (2, 4, 3), class_labels=-1, progress=False)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        sample_latents(cond_model, COSINE, (2, 4, 3), class_labels=[0, 1, 2], progress=False)
    with pytest.raises(ValueError, match="needs class_labels"):
        sample_latents(cond_model, COSINE, (2, 4, 3), guidance_scale=3.0, progress=False)
    with pytest.raises(ValueError, match=">= 1"):
        sample_latents(cond_model, COSINE, (2, 4, 3), steps=0, progress=False)
    with pytest.raises(ValueError, match="choose one of"):
        sample_latents(cond_model, COSINE, (2, 4, 3), sampler="unipc", progress=False)
    with pytest.raises(ValueError, match="noise must have shape"):
        sample_latents(cond_model, COSINE, (2, 4, 3), noise=torch.zeros(2, 4), progress=False)
    with pytest.raises(ValueError, match="guidance_scale must be a finite"):
        sample_latents(cond_model, COSINE, (2, 4, 3), class_labels=0, guidance_scale=float("nan"), progress=False)
    with pytest.raises(ValueError, match="needs class_labels or cond"):
        guided_v(uncond, torch.zeros(2, 4, 3), torch.full((2,), 0.5), conditioning=Conditioning(guidance_scale=2.0))

    class Broken(Recorder):
        def forward(self, noisy, alpha, **kw):
            out = super().forward(noisy, alpha, **kw)
            return out + float("inf") if len(self.calls) == 4 else out
    with pytest.raises(RuntimeError, match="at step 3 of 6"):
        sample_latents(Broken(num_classes=0), COSINE, (2, 4, 3), steps=6, progress=False)


def test_plain_function_denoiser_and_schedule_name():
    "Any callable with the contract works; the schedule may be given by name."
    def den(noisy, alpha, self_cond=None, class_labels=None, cond=None, cond_mask=None):
        return torch.zeros_like(noisy)
    out = sample_latents(den, "cosine", (2, 3, 4), steps=3, generator=0, progress=False)
    assert out.latents.shape == (2, 3, 4) and torch.isfinite(out.latents).all()


def test_dpmpp2m_survives_steps_whose_log_snrs_are_equal():
    "Thousands of steps put two α's on the same clamped value at the ends (h = 0): the step is skipped, not divided by."
    sampler = DPMSolverPP2MSampler(COSINE).set_timesteps(4000)
    lam = [0.5 * (torch.log(a) - torch.log1p(-a)).item() for a in sampler.alphas[:-1]]
    assert any(x == y for x, y in zip(lam, lam[1:]))                       # the case exists at this many steps
    x = sample_latents(MixtureDenoiser(MIX1), COSINE, (256, 1, 1), "dpmpp2m", steps=4000, generator=0, progress=False).latents
    assert torch.isfinite(x).all() and abs(x.mean().item() - (0.3 * -1.0 + 0.7 * 1.5)) < 0.25


def test_seeds_beyond_32_bits_are_refused():
    from ld4lg_edu.core import seed_everything
    with pytest.raises(ValueError, match=r"\[0, 2\*\*32\)"):
        seed_everything(2**32)
    seed_everything(2**32 - 1)
