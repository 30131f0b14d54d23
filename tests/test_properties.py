"""Property tests (hypothesis, bounded) over the public API: inputs a user can pass are either handled correctly or
refused with a ValueError/TypeError that names the problem, before any work is done."""
import csv, io, json, math, tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from ld4lg_edu.core import atomic_directory, read_meta, read_utf8, seed_everything
from ld4lg_edu.data import read_ag_news_csv
from ld4lg_edu.schedule import get_schedule
from ld4lg_edu.samplers import SAMPLERS, get_sampler

BOUNDED = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FEW = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=6)
not_a_positive_int = st.integers(max_value=0) | st.floats(allow_nan=True) | st.booleans() | st.text(max_size=4) | st.just([1])
one_line = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\x00"), max_size=12)


# ---------------------------------------------------------------- seeds
@BOUNDED
@given(st.integers(0, 2**32 - 1))
def test_every_seed_in_range_reproduces(seed):
    assert torch.equal(torch.randn(3, generator=seed_everything(seed)), torch.randn(3, generator=seed_everything(seed)))


@BOUNDED
@given(st.integers(max_value=-1) | st.integers(min_value=2**32) | st.floats() | st.text(max_size=3) | st.none())
def test_seeds_out_of_range_are_refused(seed):
    with pytest.raises(ValueError, match="seed must be an int in"):
        seed_everything(seed)


# ---------------------------------------------------------------- schedules and samplers
schedule_names = st.sampled_from(["cosine", "linear", "sigmoid"])


@BOUNDED
@given(schedule_names, st.floats(0.05, 20), st.lists(st.floats(0, 1), min_size=2, max_size=20))
def test_schedules_give_alphas_in_0_1_decreasing_in_t(name, scale, ts):
    s = get_schedule(name, scale=scale)
    t = torch.tensor(sorted(ts), dtype=torch.float64)
    alpha = s.alpha(t)
    assert torch.isfinite(alpha).all() and (alpha > 0).all() and (alpha < 1).all()
    assert (alpha[1:] <= alpha[:-1]).all()                                    # more noise as t grows
    torch.testing.assert_close(s.log_snr(t), torch.log(alpha / (1 - alpha)), rtol=1e-6, atol=1e-6)


@BOUNDED
@given(schedule_names, st.floats(allow_nan=True).filter(lambda t: not 0 <= t <= 1))
def test_times_outside_0_1_are_refused(name, t):
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        get_schedule(name).alpha(torch.tensor([0.5, t], dtype=torch.float64))


@BOUNDED
@given(schedule_names, st.floats(allow_nan=True, allow_infinity=True).filter(lambda s: not (math.isfinite(s) and s > 0)))
def test_schedule_scales_must_be_positive_finite(name, scale):
    with pytest.raises(ValueError, match="scale must be a positive finite number"):
        get_schedule(name, scale=scale)


@BOUNDED
@given(st.sampled_from(sorted(SAMPLERS)), st.integers(1, 4000))
def test_every_sampler_grid_runs_from_noise_to_data(name, steps):
    sampler = get_sampler(name).set_timesteps(steps)
    assert sampler.timesteps[0] == 1 and sampler.timesteps[-1] == 0 and len(sampler.alphas) == steps + 1
    assert sampler.alphas[-1] == 1 and (sampler.alphas[1:] >= sampler.alphas[:-1]).all()


@BOUNDED
@given(st.sampled_from(sorted(SAMPLERS)), not_a_positive_int)
def test_sampler_step_counts_must_be_positive_ints(name, steps):
    with pytest.raises(ValueError, match="num_steps must be an int >= 1"):
        get_sampler(name).set_timesteps(steps)


@BOUNDED
@given(st.text(max_size=8).filter(lambda s: s not in SAMPLERS and s != "distilled"))
def test_unknown_sampler_names_are_refused(name):
    with pytest.raises(ValueError, match="unknown sampler"):
        get_sampler(name)


@settings(max_examples=4, deadline=None)
@given(st.integers(2500, 4000), st.integers(0, 2**32 - 1))
def test_dpm_solver_stays_finite_at_any_step_count(steps, seed):
    "From ~2,841 steps on, two grid points share a clamped log-SNR (h = 0): the step must not divide by it."
    sampler = get_sampler("dpmpp2m").set_timesteps(steps)
    g = torch.Generator().manual_seed(seed)
    noisy = torch.randn(1, 2, 3, generator=g)
    for i in range(steps):
        noisy = sampler.step(torch.zeros_like(noisy), i, noisy).noisy
    assert torch.isfinite(noisy).all()


# ---------------------------------------------------------------- the pipeline's arguments, checked before any work
@pytest.fixture(scope="module")
def pipe():
    from ld4lg_edu.pipeline import tiny_pipeline
    p = tiny_pipeline(["animal", "plant"])
    p.calls = 0
    p.denoiser.register_forward_hook(lambda *a: setattr(p, "calls", p.calls + 1))
    return p


bad_sample_args = st.one_of(
    st.fixed_dictionaries({"steps": not_a_positive_int}),
    st.fixed_dictionaries({"sampler": st.text(max_size=6).filter(lambda s: s not in SAMPLERS and s != "distilled")}),
    st.fixed_dictionaries({"guidance_scale": st.floats(allow_nan=True).filter(lambda w: not math.isfinite(w))
                           | st.text(max_size=3) | st.booleans()}),
    st.fixed_dictionaries({"decode_every": not_a_positive_int}),
    st.fixed_dictionaries({"batch_size": not_a_positive_int}),
    st.fixed_dictionaries({"seed": st.integers(max_value=-1) | st.integers(min_value=2**32)}),
    st.fixed_dictionaries({"label": st.integers(2, 99) | st.integers(max_value=-1) | st.text(min_size=1, max_size=5)
                           .filter(lambda s: s not in ("animal", "plant"))}),
)


@BOUNDED
@given(st.integers(0, 3), bad_sample_args)
def test_bad_sampling_arguments_fail_before_any_step(pipe, n, bad):
    pipe.calls = 0
    with pytest.raises(ValueError):
        pipe.sample(n, **bad)
    assert pipe.calls == 0                                                     # refused before the denoiser ran


@FEW
@given(st.integers(1, 3), st.integers(0, 2**32 - 1), st.integers(1, 4))
def test_sampling_is_seeded_and_batch_size_does_not_change_latents(pipe, n, seed, batch_size):
    a = pipe.sample(n, seed=seed, steps=2, label="plant", num_beams=1, max_length=4)
    b = pipe.sample(n, seed=seed, steps=2, label="plant", num_beams=1, max_length=4, batch_size=batch_size)
    assert torch.equal(a.latents, b.latents) and a.texts == b.texts and len(a.texts) == n


# ---------------------------------------------------------------- encode / decode
@BOUNDED
@given(st.integers(1, 4), st.integers(0, 3), st.sampled_from([float("nan"), float("inf"), -float("inf")]), st.data())
def test_decode_names_the_rows_that_are_not_finite(pipe, batch, row_offset, value, data):
    latents = torch.randn(batch, pipe.num_latents, pipe.latent_dim)
    row = row_offset % batch
    latents[row, data.draw(st.integers(0, pipe.num_latents - 1)), 0] = value
    with pytest.raises(ValueError, match=rf"latents at rows \[{row}\] hold NaN or inf"):
        pipe.decode(latents)


@BOUNDED
@given(st.lists(st.integers(1, 6), min_size=1, max_size=4))
def test_decode_refuses_latents_of_another_shape(pipe, shape):
    if len(shape) == 3 and tuple(shape[1:]) == (pipe.num_latents, pipe.latent_dim): shape[2] += 1
    with pytest.raises(ValueError, match="latents must have shape"):
        pipe.decode(torch.randn(*shape))


@BOUNDED
@given(st.lists(st.text(max_size=12), min_size=1, max_size=4))
def test_encode_refuses_blank_or_non_text_items_by_position(pipe, texts):
    texts = texts + [" ", 3]
    with pytest.raises(ValueError, match="texts at positions"):
        pipe.autoencoder.encode(texts)


@FEW
@given(not_a_positive_int)
def test_encode_and_decode_refuse_batch_sizes_below_one(pipe, batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        pipe.autoencoder.encode(["a cat", "a dog"], batch_size=batch_size)
    with pytest.raises(ValueError, match="batch_size"):
        pipe.autoencoder.decode(torch.randn(2, pipe.num_latents, pipe.latent_dim), batch_size=batch_size)


# ---------------------------------------------------------------- reading files
@BOUNDED
@given(json_values.filter(lambda v: not (isinstance(v, int) and not isinstance(v, bool))))
def test_read_meta_refuses_a_field_of_another_type_by_name(value):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "thing.json"
        path.write_text(json.dumps({"format": "demo", "version": 1, "steps": value}))
        with pytest.raises(ValueError, match=r"\['steps'\] must be int"):
            read_meta(path, "demo", 1, {"steps": int})
        path.write_text(json.dumps({"format": "demo", "version": 1, "steps": 3}))
        assert read_meta(path, "demo", 1, {"steps": int})["steps"] == 3


@BOUNDED
@given(json_values.filter(lambda v: not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 2)))
def test_read_meta_refuses_any_version_it_cannot_read(version):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "thing.json"
        path.write_text(json.dumps({"format": "demo", "version": version}))
        with pytest.raises(ValueError, match="thing.json"):
            read_meta(path, "demo", 2, {})


@BOUNDED
@given(st.lists(st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), max_size=10), min_size=1,
                max_size=6), st.data())
def test_a_byte_that_is_not_utf8_is_named_with_its_line(lines, data):
    line = data.draw(st.integers(0, len(lines) - 1))
    raw = [l.encode() for l in lines]
    raw[line] += b"\xff"
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "corpus.txt"
        path.write_bytes(b"\n".join(raw))
        with pytest.raises(ValueError, match=f"corpus.txt, line {line + 1}: byte 0xff is not UTF-8"):
            read_utf8(path)


@BOUNDED
@given(st.lists(st.tuples(st.integers(-3, 9), one_line, one_line), min_size=1, max_size=8))
def test_ag_news_labels_are_read_or_refused_by_line(rows):
    names = ["World", "Sports", "Business", "Sci/Tech"]
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL).writerows(rows)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "ag.csv"
        path.write_text(buffer.getvalue(), encoding="utf-8")
        bad = [i for i, (label, _, _) in enumerate(rows) if not 1 <= label <= 4]
        if bad:  # one row per line: the first bad row is named by its line, whatever the labels around it
            with pytest.raises(ValueError, match=rf"ag.csv, line {bad[0] + 1}: label '?{rows[bad[0]][0]}'? is not a"):
                read_ag_news_csv(path, names)
        else:
            got = read_ag_news_csv(path, names)
            assert [r["label"] for r in got] == [label - 1 for label, _, _ in rows]
            assert [r["text"] for r in got] == [desc.replace("\\", " ").strip() for _, _, desc in rows]


# ---------------------------------------------------------------- atomic folders
@BOUNDED
@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.binary(max_size=20), min_size=1),
       st.dictionaries(st.sampled_from(["a", "b", "d"]), st.binary(max_size=20), min_size=1), st.integers(0, 3))
def test_an_interrupted_write_leaves_the_old_folder_exactly(old, new, die_after):
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "model"
        with atomic_directory(out) as tmp:
            for k, v in old.items(): (tmp / k).write_bytes(v)
        try:
            with atomic_directory(out) as tmp:
                for i, (k, v) in enumerate(new.items()):
                    if i == die_after: raise KeyboardInterrupt
                    (tmp / k).write_bytes(v)
        except KeyboardInterrupt: pass
        expected = old if die_after < len(new) else new
        assert {p.name: p.read_bytes() for p in out.iterdir()} == expected
        assert [p.name for p in Path(d).iterdir()] == ["model"]
