"""Headless tests of the explorer (chapter 10, 10_0_explorer_runs to 10a_explorer_app): figures, texts and
widgets, driven like a user would (clicking Sample, moving sliders) but without a browser. The pipeline is the
stand-in of tests/fake_pipeline.py, whose maths is known exactly."""
import html, json, os, re, subprocess, sys, time, urllib.error, urllib.request, warnings
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_pipeline import FakePipeline, make_fake_pipeline  # noqa: E402

from ld4lg_edu.explorer import (  # noqa: E402
    Projection, _PROJECTIONS, cluster_figure, data_latents, decode_texts, fit_projection, guidance_sweep,
    highlight_words, nearest_centre_accuracy, quick_decode, record_run, step_table_html, text_timeline_figure,
    trajectory_figure, trajectory_points, word_changes,
)
from ld4lg_edu import explorer_app as app  # noqa: E402
from ld4lg_edu.explorer_app import ClusterExplorer, DenoisingExplorer, UNCONDITIONAL, parse_scales  # noqa: E402


class Counting:
    "Wraps a pipeline and counts calls of sample / encode / decode (and decoded latents)."
    def __init__(self, pipe): self.pipe, self.samples, self.encodes, self.decodes, self.decoded = pipe, 0, 0, 0, 0
    def __getattr__(self, name): return getattr(self.pipe, name)
    def sample(self, *a, **k): self.samples += 1; return self.pipe.sample(*a, **k)
    def encode(self, texts): self.encodes += 1; return self.pipe.encode(texts)
    def decode(self, latents): self.decodes += 1; self.decoded += len(latents); return self.pipe.decode(latents)


@pytest.fixture(scope="module")
def pipe():
    return make_fake_pipeline()


@pytest.fixture(scope="module")
def background(pipe):
    return data_latents(pipe, per_class=20, progress=False)


@pytest.fixture(scope="module")
def pca(background):
    return fit_projection(background.latents, "pca")


def trace(fig, name):
    return next(t for t in fig.data if t.name == name)


def frame_trace(fig, frame, name):
    return frame.data[[fig.data[i].name for i in frame.traces].index(name)]


def xy(t):
    return np.array([t.x, t.y], dtype=float).T


# ---------------------------------------------------------------- texts
def test_word_changes_and_highlight():
    assert word_changes("the red fox", "the brown fox") == [("the", False), ("brown", True), ("fox", False)]
    assert [c for _, c in word_changes("b c", "a b c")] == [True, False, False]                 # inserted at the start
    assert [c for _, c in word_changes("a b c d", "a x y d")] == [False, True, True, False]      # two replaced
    assert [c for _, c in word_changes("same words", "same words")] == [False, False]
    assert highlight_words("a b", "a c", style="plotly") == 'a <span style="color:#d62728"><b>c</b></span>'
    assert highlight_words("x", "<i>") == '<mark class="ld4lg-changed">&lt;i&gt;</mark>'         # escaped, never raw HTML


def test_record_run_decodes_each_step_once(pipe):
    counting = Counting(pipe)
    full = record_run(counting, n=3, label="food", guidance_scale=2.0, steps=10, seed=4)
    assert counting.samples == 1 and counting.decodes == 0          # the pipeline decoded every step itself
    assert full.texts_at(full.num_steps) == full.texts and full.labels == [2, 2, 2]
    assert full.trajectory.texts[3] == pipe.decode(full.trajectory.x0_pred[3])
    counting = Counting(pipe)
    lazy = record_run(counting, n=3, label="food", guidance_scale=2.0, steps=10, seed=4, lazy=True)
    assert counting.decodes == 1 and counting.decoded == 3           # the pipeline decoded step 0; the last call here
    assert [lazy.is_decoded(i) for i in range(11)] == [i in (0, 9, 10) for i in range(11)]
    with pytest.raises(ValueError, match=r"decode_texts\(run, pipe, \[4\], 'x0'\) first"): lazy.texts_at(4)
    for step in (4, 5, 4, 10, 5):                                    # a reader scrubbing the slider
        decode_texts(lazy, counting, [step])
        assert lazy.texts_at(step) == full.texts_at(step)
    assert counting.decodes == 3 and counting.decoded == 3 * 3       # steps 4 and 5, once each
    assert decode_texts(lazy, counting) == [1, 2, 3, 6, 7, 8] and counting.decodes == 4   # the rest in one batch
    assert lazy.trajectory.texts == full.trajectory.texts and lazy.texts == full.texts
    with pytest.raises(ValueError, match=r"steps must be ints in \[0, 10\]"): decode_texts(lazy, pipe, [11])
    with pytest.raises(ValueError, match="lazy must be True or False"): record_run(pipe, lazy="yes")


def test_lazy_texts_equal_eager_ones_on_the_tiny_pipeline():
    "The real decoder (chapter 08's tiny pipeline, random weights): a step decoded alone gives the texts of the batch."
    from ld4lg_edu.data import load_corpus
    from ld4lg_edu.pipeline import tiny_pipeline
    tiny = tiny_pipeline(label_names=load_corpus("wordnet").label_names)
    settings = dict(n=3, label="plant", guidance_scale=2.0, steps=6, seed=11)
    eager, lazy = record_run(tiny, **settings), record_run(tiny, **settings, lazy=True)
    assert [i for i in range(6) if lazy.is_decoded(i)] == [0, 5] and lazy.texts == eager.texts
    for step in (3, 1, 2, 4):
        decode_texts(lazy, tiny, [step])
        assert lazy.texts_at(step) == eager.texts_at(step)
    decode_texts(lazy, tiny, source="z_t"); decode_texts(eager, tiny, [2], source="z_t")
    assert lazy.texts_at(2, "z_t") == eager.texts_at(2, "z_t")


def test_record_run_rejects_bad_input(pipe):
    with pytest.raises(ValueError, match="n must be a positive int"): record_run(pipe, n=0)
    with pytest.raises(ValueError, match="steps must be a positive int"): record_run(pipe, steps=2.5)

    class NoTrajectory(Counting):
        def sample(self, *a, **k): return self.pipe.sample(*a, **{**k, "return_trajectory": False})
    with pytest.raises(TypeError, match="returned no trajectory"): record_run(NoTrajectory(pipe))
    run = record_run(pipe, n=2, steps=5)
    with pytest.raises(ValueError, match="0..S-1 = model calls"): run.texts_at(6)


def test_step_table_marks_changes_since_previous_shown(pipe):
    run = record_run(pipe, n=3, label="plant", guidance_scale=1.0, steps=8, seed=2)
    page = step_table_html(run, 0, previous=run.num_steps)          # a jump from the end back to the start
    expected = sum(c for j in range(3) for _, c in word_changes(run.texts[j], run.texts_at(0)[j]))
    assert page.count("<mark") == expected > 0
    assert "data-step='0'" in page and page.count("<td class='ld4lg-text'>") == 3
    assert step_table_html(run, 0).count("<mark") == 0             # the first step has nothing before it


def test_texts_of_z_t_come_out_of_noise(pipe):
    "Decoding z_t itself: one batched call of S·n latents; early steps are noise, the last ones close to the sample."
    run = record_run(pipe, n=3, label="animal", guidance_scale=2.0, steps=12, seed=5)
    counting = Counting(pipe)
    assert decode_texts(run, counting, source="z_t") == list(range(12))
    assert decode_texts(run, counting, source="z_t") == []                       # kept: nothing decoded twice
    assert counting.decodes == 1 and counting.decoded == 12 * 3
    assert run.texts_at(4, "z_t") == pipe.decode(run.trajectory.noisy[4]) and run.texts_at(12, "z_t") == run.texts
    def agreement(step):  # share of words equal to the final text's
        return np.mean([np.mean([a == b for a, b in zip(t.split(), f.split())]) for t, f in zip(run.texts_at(step, "z_t"), run.texts)])
    assert agreement(0) < agreement(11)
    assert "text decoded from z_t" in step_table_html(run, 3, source="z_t") and "data-source='z_t'" in step_table_html(run, 3, source="z_t")
    with pytest.raises(ValueError, match="source must be one of"): run.texts_at(0, "noise")


def test_quick_decode_uses_one_beam_when_the_decoder_takes_it(pipe):
    "The S·n texts of a run's steps are decoded greedily (num_beams=1) by a decoder that has beams; others are called as they are."
    seen = []
    class Beams(Counting):
        def decode(self, latents, num_beams=4): seen.append(num_beams); return self.pipe.decode(latents)
    z = torch.randn(3, pipe.num_latents, pipe.latent_dim)
    assert quick_decode(Beams(pipe), z) == pipe.decode(z) and seen == [1]
    assert quick_decode(pipe, z) == pipe.decode(z)


# ---------------------------------------------------------------- projections
def test_pca_projection_maths():
    g = torch.Generator().manual_seed(1)
    data = torch.randn(200, 3, 5, generator=g) * torch.linspace(3, 0.1, 15).reshape(3, 5)   # variance falls along the flat axis
    proj = Projection("pca", dims=3).fit(data)
    np.testing.assert_allclose(proj.components @ proj.components.T, np.eye(3), atol=1e-5)   # orthonormal axes
    assert list(proj.explained) == sorted(proj.explained, reverse=True)
    np.testing.assert_allclose(proj.transform(data.mean(0)), np.zeros(3), atol=1e-4)        # the mean maps to the origin
    np.testing.assert_allclose(proj.transform(data[:4] * 2) - proj.transform(data[:4]),      # linear
                               proj.transform(data[:4]) + (proj.mean @ proj.components.T), atol=1e-3)
    assert proj.transform(torch.randn(2, 6, 3, 5)).shape == (2, 6, 3)
    with pytest.raises(ValueError, match="not fitted"): Projection().transform(data)
    with pytest.raises(ValueError, match="more than 2 data latents"): Projection().fit(data[:2])
    with pytest.raises(ValueError, match="dims must be 2 or 3"): Projection(dims=4)


def test_fit_projection_caches_in_memory_and_on_disk(tmp_path):
    data = torch.randn(50, 2, 4)
    first = fit_projection(data, "pca", cache_dir=tmp_path)
    assert fit_projection(data, "pca", cache_dir=tmp_path) is first
    assert fit_projection(data + 1, "pca", cache_dir=tmp_path) is not first   # other latents, other map
    _PROJECTIONS.clear()
    again = fit_projection(data, "pca", cache_dir=tmp_path)
    np.testing.assert_allclose(again.components, first.components)
    cached = sorted(tmp_path.glob("projection-pca2-*.npz"))
    assert len(cached) == 2 and not list(tmp_path.glob(".*tmp*"))       # written whole, no leftovers
    for path in cached: path.write_bytes(b"not an npz file")
    _PROJECTIONS.clear()
    with pytest.warns(UserWarning, match="fitting again"):
        refit = fit_projection(data, "pca", cache_dir=tmp_path)
    np.testing.assert_allclose(refit.components, first.components)


def test_class_means_map_separates_what_pca_mixes(tmp_path):
    "Classes that differ only along quiet directions: PCA shows the loud ones, the class-means map the ones that separate."
    g = torch.Generator().manual_seed(3)
    labels = [k for k in range(3) for _ in range(80)]
    scale = torch.full((48,), 0.3); scale[:8] = 3.0                              # 8 loud axes, 40 quiet ones
    centres = torch.zeros(3, 48); centres[1, -1], centres[2, -2] = 4.0, 4.0      # the classes differ on two quiet axes
    data = (torch.randn(240, 48, generator=g) * scale + centres[labels]).reshape(240, 8, 6)
    means = fit_projection(data, "means", labels=labels, cache_dir=tmp_path)
    pca = fit_projection(data, "pca")
    assert nearest_centre_accuracy(means.data_points, labels) > 0.9 > 0.6 > nearest_centre_accuracy(pca.data_points, labels)
    assert means.axis_titles()[0].startswith("class axis 1")
    _PROJECTIONS.clear()
    again = fit_projection(data, "means", labels=labels, cache_dir=tmp_path)   # from disk: same map
    np.testing.assert_allclose(again.transform(data[:5]), means.transform(data[:5]), atol=1e-5)
    assert fit_projection(data, "means", labels=labels[::-1], cache_dir=tmp_path) is not again   # other labels, other map
    with pytest.raises(ValueError, match="needs a class id"): fit_projection(data, "means")


def test_umap_places_new_points_among_their_nearest_data_neighbours():
    "The UMAP map's state is the data and its layout; a new latent lands at the inverse-distance weighted mean of its neighbours."
    data = torch.randn(40, 2, 3)
    layout = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    meta = dict(method="umap", dims=2, seed=0, neighbours=3, width=6, data_key="x", umap_kwargs={})
    proj = Projection.from_state({"meta": np.array(json.dumps(meta)), "data": data.reshape(40, 6).numpy(), "data_points": layout})
    z = data[7] + 1e-4 * torch.randn(2, 3)
    np.testing.assert_allclose(proj.transform(z), layout[7], atol=1e-2)         # next to a data latent: on its point
    far = torch.randn(5, 2, 3) * 10
    d = torch.cdist(far.reshape(5, 6), data.reshape(40, 6)).numpy()
    near = np.argsort(d, 1)[:, :3]
    w = 1 / np.take_along_axis(d, near, 1)
    np.testing.assert_allclose(proj.transform(far), (w[..., None] * layout[near]).sum(1) / w.sum(1, keepdims=True), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="not floating point"):
        Projection.from_state({"meta": np.array(json.dumps(meta)), "data": np.array(["x"]), "data_points": layout})


def test_data_latents_balanced_and_cached(pipe):
    counting = Counting(pipe)
    data = data_latents(counting, per_class=7, batch_size=10, progress=False)
    assert data.latents.shape == (42, pipe.num_latents, pipe.latent_dim)
    assert np.bincount(data.labels).tolist() == [7] * 6 and data.label_names == pipe.label_names
    assert counting.encodes == 5                                     # 42 rows in batches of 10
    assert data_latents(counting, per_class=7, batch_size=10, progress=False) is data and counting.encodes == 5
    torch.testing.assert_close(data.latents[:3], pipe.encode(data.texts[:3]))


def test_import_stays_light():
    code = ("import sys, ld4lg_edu; assert 'plotly' not in sys.modules and 'ipywidgets' not in sys.modules; "
            "import ld4lg_edu.explorer_runs, ld4lg_edu.latent_maps; assert 'plotly' not in sys.modules; "
            "import ld4lg_edu.explorer; assert 'umap' not in sys.modules and 'ipywidgets' not in sys.modules; "
            "print('ok')")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout.strip() == "ok"


def test_one_import_still_gives_the_whole_explorer():
    "explorer and explorer_app hand out every public name of the sections before them: the same objects, not copies."
    from ld4lg_edu import explorer, explorer_controls, explorer_runs, explorer_views, latent_maps
    for hub, parts in ((explorer, (explorer_runs, latent_maps)), (app, (explorer_controls, explorer_views))):
        for part in parts:
            assert set(part.__all__) <= set(hub.__all__), (hub.__name__, set(part.__all__) - set(hub.__all__))
            assert all(getattr(hub, name) is getattr(part, name) for name in part.__all__)


# ---------------------------------------------------------------- static figures
def test_trajectory_figure_frames_follow_the_run(pipe, background, pca):
    run = record_run(pipe, n=3, label="animal", guidance_scale=2.0, steps=6, seed=0)
    fig = trajectory_figure(run, pca, background)
    assert len(fig.data) == 6 + 2 * 3 + 2 and len(fig.frames) == run.num_steps + 1
    for k, frame in enumerate(fig.frames):
        expected = pca.transform(run.trajectory.noisy[k]) if k < run.num_steps else pca.transform(run.latents)
        np.testing.assert_allclose(xy(frame_trace(fig, frame, "z_t now")), expected, atol=1e-4)
        np.testing.assert_allclose(xy(frame_trace(fig, frame, "x̂0 now")), pca.transform(run.trajectory.x0_pred[k]) if k < run.num_steps
                                   else pca.transform(run.latents), atol=1e-4)
        assert len(frame_trace(fig, frame, "sample 3: z_t").x) == k + 1
    hover = trace(fig, "sample 1: x̂0").hovertext
    assert len(hover) == run.num_steps + 1 and "step 3, t = " in hover[2] and html.escape(run.texts_at(2)[0]) in hover[2].replace("<br>", " ")
    assert fig.layout.sliders[0].steps[-1].label == "final"
    json.loads(fig.to_json())                                        # serialisable: renders from a saved notebook
    lean = trajectory_figure(run, pca, None, show_x0=False, animate=False, step=2)
    assert [t.name for t in lean.data] == ["sample 1: z_t", "sample 2: z_t", "sample 3: z_t", "z_t now"] and not lean.frames
    np.testing.assert_allclose(xy(trace(lean, "z_t now")), pca.transform(run.trajectory.noisy[2]), atol=1e-4)


def test_trajectory_figure_3d(pipe, background):
    run = record_run(pipe, n=2, steps=4)
    pca3 = fit_projection(background.latents, "pca", dims=3)
    fig = trajectory_figure(run, pca3, background)
    assert {t.type for t in fig.data} == {"scatter3d"} and fig.layout.scene.zaxis.title.text.startswith("PC3")
    ring = frame_trace(fig, fig.frames[1], "z_t now")
    np.testing.assert_allclose(np.array([ring.x, ring.y, ring.z]).T, pca3.transform(run.trajectory.noisy[1]), atol=1e-4)


def test_text_timeline_figure(pipe):
    run = record_run(pipe, n=2, label="person", guidance_scale=1.5, steps=7, seed=3)
    fig = text_timeline_figure(run)
    assert len(fig.frames) == 8
    for k in (1, 4, 7):
        cells = fig.frames[k].data[0].cells.values
        assert list(cells[1]) == ["person", "person"]
        for j in range(2):
            marked = sum(c for _, c in word_changes(run.texts_at(k - 1)[j], run.texts_at(k)[j]))
            assert cells[2][j].count("<b>") == marked


def test_guidance_sweep_uses_the_same_seed_at_every_scale(pipe):
    sweep = guidance_sweep(pipe, scales=(1.0, 3.0), per_class=2, steps=4, seed=7, progress=False)
    assert sweep.labels == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # the fake's sample is base + w * centroid[class]: the same noise at both scales leaves exactly 2 * centroid between them
    expected = 2.0 * pipe.centroids[torch.tensor(sweep.labels)]
    torch.testing.assert_close(sweep.latents[3.0] - sweep.latents[1.0], expected, rtol=1e-4, atol=1e-4)
    assert sweep.texts[3.0] == pipe.decode(sweep.latents[3.0])
    with pytest.raises(ValueError, match="unconditional"): guidance_sweep(FakePipeline(label_names=None), scales=(1, 2))
    uncond = guidance_sweep(FakePipeline(label_names=None), scales=(1,), per_class=3, steps=3, progress=False)
    assert uncond.labels == [None] * 3


def test_cluster_figure_frames_per_scale(pipe, background, pca):
    sweep = guidance_sweep(pipe, scales=(0.0, 1.0, 4.0), per_class=2, steps=4, progress=False)
    fig = cluster_figure(pca, background, sweep)
    assert [f.name for f in fig.frames] == ["0", "1", "4"]
    for w, frame in zip(sweep.scales, fig.frames):
        np.testing.assert_allclose(xy(frame_trace(fig, frame, "samples: plant")), pca.transform(sweep.latents[w][[2, 3]]), atol=1e-4)
        path = frame_trace(fig, frame, "guidance paths")
        assert len(path.x) == 12 * (sweep.scales.index(w) + 2)     # one point per scale so far, plus a gap, per sample
    # guidance pulls samples towards their class: at w = 1 they sit nearer their class's data than at w = 0
    def distance_to_class(w):
        points, centres = pca.transform(sweep.latents[w]), {}
        for k in range(6): centres[k] = pca.transform(background.latents[[i for i, l in enumerate(background.labels) if l == k]]).mean(0)
        return np.mean([np.linalg.norm(p - centres[l]) for p, l in zip(points, sweep.labels)])
    assert distance_to_class(1.0) < distance_to_class(0.0)
    with pytest.raises(ValueError, match="was not sampled"): cluster_figure(pca, background, sweep, scale=2.0)


# ---------------------------------------------------------------- widgets
def test_denoising_explorer_sample_and_slider(pipe, background):
    counting = Counting(pipe)
    ex = DenoisingExplorer(counting, background, n=4, steps=9)
    assert all(t.name.startswith("data: ") for t in ex.figure.data) and ex.step_slider.disabled
    ex.sample_button.click()
    run = ex.run
    assert counting.samples == 1 and run.num_samples == 4 and run.labels == [0] * 4
    assert (ex.step_slider.min, ex.step_slider.max, ex.step_slider.value, ex.step_slider.disabled) == (0, 9, 9, False)
    assert all(html.escape(t) in ex.texts.value for t in run.texts) and "recorded in" in ex.status.value
    assert [i for i in range(9) if run.is_decoded(i)] == [0, 8]      # Sample decoded the last call (the fake the first)
    assert "not decoded yet" in trace(ex.figure, "sample 1: x̂0").hovertext[5]
    eager = record_run(pipe, n=4, label="animal", guidance_scale=ex.guidance.value, steps=9, seed=0)
    decodes = counting.decodes
    for step in (0, 5, 8, 0, 5, 3):                                  # scrub back and forth
        ex.step_slider.value = step
        assert f"data-step='{step}'" in ex.texts.value
        shown = re.sub(r"<mark[^>]*>|</mark>", "", ex.texts.value)    # the text without the change marks
        assert all(html.escape(t) in shown for t in eager.texts_at(step))   # the texts an eager run decodes
        np.testing.assert_allclose(xy(trace(ex.figure, "z_t now")), ex._projection().transform(run.trajectory.noisy[step]), atol=1e-4)
        assert len(trace(ex.figure, "sample 4: x̂0").x) == step + 1
    assert counting.samples == 1 and counting.decodes == decodes + 2 and ex.run is run   # steps 5 and 3, once each
    hover = trace(ex.figure, "sample 1: x̂0").hovertext                # the paths' hovers follow what is decoded
    assert html.escape(run.texts_at(5)[0].split()[0]) in hover[5] and "not decoded yet" in hover[6]


def test_denoising_explorer_controls_reach_the_pipeline(pipe, background):
    ex = DenoisingExplorer(pipe, background)
    ex.label.value = UNCONDITIONAL
    assert ex.guidance.disabled
    ex.label.value = "location"
    assert not ex.guidance.disabled
    ex.guidance.value, ex.sampler.value, ex.steps.value, ex.num_samples.value, ex.seed.value = 3.0, "ddim", 7, 2, 11
    run = ex.sample()
    assert run.settings == dict(n=2, label="location", guidance_scale=3.0, steps=7, sampler="ddim", seed=11)
    assert run.labels == [5, 5] and ex.step_slider.max == 7 and ex.texts.value.count("<td>location</td>") == 2
    expected = pipe.sample(2, label="location", guidance_scale=3.0, steps=7, sampler="ddim", seed=11)
    assert run.texts == expected.texts
    ex.label.value = UNCONDITIONAL
    assert ex.sample().settings["guidance_scale"] == 1.0             # no guidance without a class


def test_explorers_start_from_the_pipelines_own_steps(background):
    own = make_fake_pipeline()
    own.steps = 7                                                     # a model whose default is 7 sampler steps
    assert DenoisingExplorer(own, background).steps.value == 7
    assert ClusterExplorer(own, background, lazy=True).steps.value == 7
    assert DenoisingExplorer(own, background, steps=12).steps.value == 12   # an explicit choice wins
    assert DenoisingExplorer(own, background).sample().settings["steps"] == 7


def test_denoising_explorer_views(pipe, background):
    ex = DenoisingExplorer(pipe, background, n=2, steps=5)
    ex.sample()
    ex.step_slider.value = 2
    ex.dims.value = 3
    assert {t.type for t in ex.figure.data} == {"scatter3d"} and ex.step_slider.value == 2
    ring = trace(ex.figure, "z_t now")
    np.testing.assert_allclose(np.array([ring.x, ring.y, ring.z]).T, ex._projection().transform(ex.run.trajectory.noisy[2]), atol=1e-4)
    ex.show_x0.value = False
    assert not any("x̂0" in t.name for t in ex.figure.data)
    ex.dims.value = 2
    assert {t.type for t in ex.figure.data} == {"scatter"}


def plotly_messages(widget):
    "The plotly operations `widget` sends to the page from now on: [(kind, message)], kind 'update', 'addTraces', ..."
    log, send = [], widget._send
    def record(msg, buffers=None):
        state = msg.get("state", {})
        log.extend((k.removeprefix("_py2js_"), v) for k, v in state.items() if k.startswith("_py2js_") and v)
        return send(msg, buffers)
    widget._send = record
    return log


def page_figure(figure, width=None):
    "A figure as the page gets it (plotly JSON, without the trace ids the widget adds)."
    out = json.loads(figure.to_json())
    for t in out["data"]: t.pop("uid", None)
    if width is not None: out["layout"]["width"] = width
    return out


def test_a_sample_click_changes_the_figure_on_the_page_in_one_message(pipe, background):
    """Sampling again sends one plotly update, without the data latents' traces; the figure is the one a fresh
    build gives."""
    ex = DenoisingExplorer(pipe, background, n=3, steps=6)
    sent = plotly_messages(ex.figure)
    ex.sample()                                                       # the first run: paths added to the data latents
    assert [kind for kind, _ in sent] == ["addTraces", "update"], [kind for kind, _ in sent]
    for map_choice in ("pca", "means"):
        ex.seed.value += 1
        sent.clear()
        ex.sample()
        # one update, not delete + add traces + relayout + width
        assert [kind for kind, _ in sent] == ["update"], [kind for kind, _ in sent]
        data = {i for i, t in enumerate(ex.figure.data) if t.name.startswith("data: ")}
        assert data and not data & set(sent[0][1]["style_traces"])   # the data latents are on the page already
        fresh = trajectory_figure(ex.run, ex._projection(), background, step=ex.run.num_steps, animate=False)
        assert page_figure(ex.figure) == page_figure(fresh, width=1000)
        ex.method.value = map_choice                                 # another map: the same traces, moved
        fresh = trajectory_figure(ex.run, ex._projection(), background, step=ex.run.num_steps, animate=False)
        assert page_figure(ex.figure) == page_figure(fresh, width=1000)


def test_denoising_explorer_shows_errors_instead_of_raising(pipe, background):
    class Failing(Counting):
        def sample(self, *a, **k): raise ValueError("the denoiser is broken; retrain it")
    ex = DenoisingExplorer(Failing(pipe), background)
    assert ex.sample() is None and ex.run is None
    assert "the denoiser is broken; retrain it" in ex.status.value and not ex.sample_button.disabled


def test_every_callback_shows_its_exception_in_the_status_line(pipe, background):
    "Any exception in a widget callback — not only a bad setting — ends up in the status line, and the app goes on working."
    class Broken(Counting):
        def sample(self, *a, **k): raise ZeroDivisionError("float division by zero")
    ex = DenoisingExplorer(Broken(pipe), background)
    ex.sample_button.click()
    assert "ZeroDivisionError: float division by zero" in ex.status.value and not ex.sample_button.disabled
    class BadDecoder(Counting):
        def decode(self, latents): raise RuntimeError("the decoder ran out of memory")
    ex = DenoisingExplorer(pipe, background, n=2, steps=4)
    ex.sample()
    ex.pipe = BadDecoder(pipe)
    ex.source.value = "z_t"                                          # through the toggle's callback
    assert "RuntimeError: the decoder ran out of memory" in ex.status.value
    ex.pipe = pipe
    ex.method.value = "pca"
    assert ex.sample() is not None and "recorded in" in ex.status.value


def test_decode_toggle_shows_text_coming_out_of_noise(pipe, background):
    counting = Counting(pipe)
    ex = DenoisingExplorer(counting, background, n=2, steps=6)
    assert ex.method.value == "means" and ex.figure.layout.xaxis.title.text.startswith("class axis 1")   # the first view
    ex.sample()
    ex.step_slider.value = 1
    decodes, decoded = counting.decodes, counting.decoded
    ex.source.value = "z_t"
    assert counting.decodes == decodes + 1 and counting.decoded == decoded + 2 * 2   # steps 0 and 1 of z_t, one call
    assert "data-source='z_t'" in ex.texts.value and "decoded from z_t" in ex.caption.value
    shown = re.sub(r"<mark[^>]*>|</mark>", "", ex.texts.value)
    assert all(html.escape(t) in shown for t in ex.run.texts_at(1, "z_t"))
    ex.seed.value = 3
    ex.sample()                                                      # a new run while z_t is chosen: its shown step decoded
    assert ex.run.is_decoded(5, "z_t") and not ex.run.is_decoded(4, "z_t") and "data-source='z_t'" in ex.texts.value
    ex.source.value = "x0"                                           # x̂0 of the last call: decoded at Sample
    assert "data-source='x0'" in ex.texts.value and counting.decodes == decodes + 3


def test_data_latents_are_kept_on_disk_for_the_same_encoder_only(tmp_path, monkeypatch):
    class CountingEncoder(FakePipeline):
        encoded = 0
        def encode(self, texts): self.encoded += len(texts); return super().encode(texts)
    first = CountingEncoder()
    data = data_latents(first, per_class=5, progress=False, cache_dir=tmp_path)
    assert first.encoded == 30 and len(list(tmp_path.glob("latents-*.npz"))) == 1
    again = CountingEncoder()                                         # a new session with the same encoder
    import ld4lg_edu.data
    with monkeypatch.context() as m:                                  # ... does not even read the corpus
        m.setattr(ld4lg_edu.data, "load_corpus", lambda *a, **k: pytest.fail("the corpus was read again"))
        kept = data_latents(again, per_class=5, progress=False, cache_dir=tmp_path)
    assert again.encoded == 2 and torch.equal(kept.latents, data.latents)   # only the probe rows encoded
    assert (kept.texts, kept.labels, kept.label_names) == (data.texts, data.labels, data.label_names)
    other = CountingEncoder(seed=1)                                   # another encoder: its probe disagrees, encoded anew
    fresh = data_latents(other, per_class=5, progress=False, cache_dir=tmp_path)
    assert other.encoded == 32 and not torch.equal(fresh.latents, data.latents)


def test_sample_reports_progress_and_cancel_stops_it(pipe, background):
    ex = DenoisingExplorer(pipe, background, n=2, steps=5)
    seen = []
    ex.status.observe(lambda c: seen.append(c["new"]), names="value")
    ex.sample()
    assert [s for s in seen if "step" in s and "of 5" in s] == [f"<i>sampling: step {i} of 5…</i>" for i in range(1, 5)]
    assert "<i>decoding the texts…</i>" in seen and ex.bar.bar.value == 5 and seen[-1].endswith("replay them.")
    shown = ex.texts.value
    ex.bar.cancel.click()                                            # Cancel pressed: the next step stops the run
    assert ex.sample() is None and ex.status.value == "sampling cancelled; the run on screen is the previous one."
    assert ex.texts.value == shown and not ex.sample_button.disabled and not ex.step_slider.disabled


def test_threaded_sample_can_be_cancelled_while_it_runs(pipe, background):
    "On a served page Sample runs on a thread, so a click on Cancel is read while it runs."
    ex = DenoisingExplorer(pipe, background, n=2, steps=100, threaded=True)   # 100 steps: the stand-in sleeps at each
    ex.sample_button.click()
    deadline = time.monotonic() + 30
    while "sampling: step" not in ex.status.value and time.monotonic() < deadline: time.sleep(0.05)
    assert ex.bar.busy and ex.bar.layout.visibility == "visible" and ex.sample_button.disabled
    start = time.monotonic()
    ex.bar.cancel.click()
    ex.bar.thread.join(30)
    assert time.monotonic() - start < 2 and not ex.bar.busy and ex.run is None
    assert ex.status.value == "sampling cancelled; nothing sampled yet." and ex.bar.layout.visibility == "hidden"
    ex.steps.value = 3
    ex.sample_button.click()
    ex.bar.thread.join(30)
    assert ex.run is not None and ex.run.num_steps == 3 and "recorded in" in ex.status.value


def test_distilled_sampler_is_offered_when_the_pipeline_has_students(pipe, background):
    assert "distilled" not in [v for _, v in DenoisingExplorer(pipe, background).sampler.options]
    class WithStudents(FakePipeline):
        students = {2: object(), 8: object()}
    ex = DenoisingExplorer(WithStudents(), background, steps=25)
    assert ("distilled (2/8 steps)", "distilled") in ex.sampler.options
    ex.sampler.value = "distilled"
    assert ex.steps.value == 2                                       # a step count a student was made for
    ex.steps.value = 8
    ex.sampler.value = "ddim"; ex.sampler.value = "distilled"
    assert ex.steps.value == 8


def test_cluster_sampling_reports_progress(pipe, background):
    ce = ClusterExplorer(pipe, background, per_class=1, steps=2, scales=(1, 2, 4))
    seen = []
    ce.status.observe(lambda c: seen.append(c["new"]), names="value")
    ce.sample()
    assert [s for s in seen if " of 3)" in s] == [f"<i>sampling every class at w = {w} ({i} of 3)…</i>" for i, w in ((1, 1), (2, 2), (3, 4))]
    assert seen[-1].startswith("6 samples × 3 scales") and ce.bar.layout.visibility == "hidden"


def test_cluster_explorer(pipe, background, pca):
    ce = ClusterExplorer(pipe, background, method="pca", per_class=2, steps=4, scales=(1, 2, 4))
    assert ce.guidance.disabled
    sweep = ce.sample()
    assert list(ce.guidance.options) == ["1", "2", "4"] and ce.guidance.value == "4"
    np.testing.assert_allclose(xy(trace(ce.figure, "samples: food")), pca.transform(sweep.latents[4.0][[4, 5]]), atol=1e-4)
    ce.guidance.value = "1"
    np.testing.assert_allclose(xy(trace(ce.figure, "samples: food")), pca.transform(sweep.latents[1.0][[4, 5]]), atol=1e-4)
    assert len(trace(ce.figure, "guidance paths").x) == 12 * 2
    ce.scales.value = "1, two"
    assert ce.sample() is None and "numbers separated by commas" in ce.status.value and ce.sweep is sweep
    assert parse_scales(" 2,1 ;4, 2 ") == [1.0, 2.0, 4.0]
    with pytest.raises(ValueError, match="non-negative"): parse_scales("-1")


def test_unconditional_pipeline():
    uncond = FakePipeline(label_names=None)
    bg = data_latents(uncond, per_class=30, progress=False)
    assert len(bg.texts) == 6 * 30 and bg.label_names is not None   # the corpus keeps its classes: the background is coloured by them
    ex = DenoisingExplorer(uncond, bg)
    assert ex.label.options == (UNCONDITIONAL,) and ex.guidance.disabled
    assert ex.sample().labels == [None] * 4
    ce = ClusterExplorer(uncond, bg, method="pca", per_class=3, steps=3)
    assert ce.scales.disabled and ce.scales.value == "1"
    assert ce.sample().scales == [1.0] and trace(ce.figure, "samples: unconditional")


# ---------------------------------------------------------------- app and launcher
def test_shipped_app_notebook_is_generated():
    import nbformat
    from ld4lg_edu.core import ASSETS
    assert (ASSETS / app.APP_NOTEBOOK).read_text(encoding="utf-8") == nbformat.writes(app.app_notebook()) + "\n"


def test_app_main_and_model_loading(monkeypatch):
    assert "could not start" in app.app_main("nowhere_module:make").value
    with pytest.raises(ValueError, match="'module:function' must name"): app.load_explorer_pipeline("fake_pipeline:nothing_here")
    with pytest.raises(ValueError, match="unknown model"): app.load_explorer_pipeline("gpt-17")
    with pytest.raises(TypeError, match="non-empty string"): app.load_explorer_pipeline(None)
    monkeypatch.setenv(app.MODEL_ENV, "fake_pipeline:make_fake_pipeline")
    ui = app.app_main()
    assert isinstance(ui, app.ExplorerApp) and ui.tabs.titles == ("Denoising", "Class clusters")
    assert not ui.clusters.drawn                                     # the UMAP tab is fitted only when opened


def test_launch_explorer_rejects_bad_input():
    with pytest.raises(ValueError, match="'voila' or 'lab'"): app.launch_explorer(ui="gradio", wait=False)
    with pytest.raises(TypeError, match="non-empty string"): app.launch_explorer(model="", wait=False)
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0)); busy.listen()
        with pytest.raises(ValueError, match="already in use"): app.launch_explorer(port=busy.getsockname()[1], wait=False)


@pytest.mark.slow
def test_umap_tab(pipe, background, tmp_path):
    "Opening the cluster tab fits UMAP once (cached on disk); the samples are placed on it."
    ui = app.ExplorerApp(pipe, background, cache_dir=tmp_path)
    ui.tabs.selected_index = 1
    assert ui.clusters.drawn and ui.clusters.figure.layout.xaxis.title.text.startswith("class axis 1")
    ui.clusters.method.value = "umap"
    assert ui.clusters.figure.layout.xaxis.title.text == "UMAP 1"
    assert len(list(tmp_path.glob("projection-umap2-*.npz"))) == 1
    ui.clusters.per_class.value, ui.clusters.steps.value, ui.clusters.scales.value = 2, 3, "1, 3"
    sweep = ui.clusters.sample()
    assert len(trace(ui.clusters.figure, "samples: animal").x) == 2 and sweep.scales == [1.0, 3.0]
    ui.denoising.method.value = "umap"                               # the same fitted map, from the cache
    assert ui.denoising.figure.layout.xaxis.title.text == "UMAP 1"


VOILA = pytest.mark.skipif(__import__("importlib").util.find_spec("voila") is None, reason="voila is not installed (pip install voila)")
TESTS = str(Path(__file__).resolve().parent)


def _cmdline(pid):
    try: return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError: return ""


def _kernels(pids):
    return [pid for pid in pids if "ipykernel" in _cmdline(pid)]


@pytest.fixture(scope="module", autouse=True)
def no_server_left_behind():
    "After this file's tests, nothing they started may still run (servers, kernels); what is left is ended and named."
    yield
    left = {pid: _cmdline(pid) for pid in app._alive(app._process_tree(os.getpid())) if pid != os.getpid()}
    left = {pid: cmd for pid, cmd in left.items() if any(k in cmd for k in ("voila", "explorer_server", "ipykernel", "jupyter"))}
    for pid in left: os.kill(pid, 9)
    assert not left, f"the tests left these running: {left}"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One explorer server for the server tests: one preheated kernel, short culling and close delays. Its model cannot load, so
    each page is the app's short error page: the kernels, requests and websockets are the real ones, at a fifth of the CPU."""
    server = app.launch_explorer(port=None, model="nowhere_module:make", wait=False, cull_idle=6, close_after=2,
                                 refill_after=0, env={"PYTHONPATH": TESTS, "LD4LG_CACHE": str(tmp_path_factory.mktemp("cache"))})
    yield server
    tree = server.processes()
    server.stop()
    assert not app._alive(tree), f"processes outlived stop(): {app._alive(tree)}"


def _get(url, headers=None, timeout=300):
    "(status, body) of a GET, errors included."
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as r: return r.status, r.read().decode()
    except urllib.error.HTTPError as e: return e.code, e.read().decode()


@pytest.mark.slow
@VOILA
def test_server_needs_the_token_and_refuses_foreign_hosts(served):
    "DNS rebinding sends a foreign Host, another site's page a foreign Origin: both refused; without the token, no app."
    from urllib.parse import urlsplit
    base, port = served.url.split("?")[0], urlsplit(served.url).port
    assert f"token={served.token}" in served.url and served.token not in " ".join(_cmdline(p) for p in served.processes())
    for headers in ({"Host": f"rebound.example:{port}"}, {"Origin": "http://evil.example"}, {"Origin": f"http://localhost:{port + 1}"}):
        status, body = _get(served.url, headers)
        assert status == 403 and ("not this explorer" in body or "refused" in body), (headers, status, body[:200])
    status, body = _get(base)                                        # no token: the login form, not the app
    assert "widget-view+json" not in body and "password" in body.lower()
    assert not _get(base + "api/kernels")[1].lstrip().startswith("[")     # no list of kernels either
    status, body = _get(served.url)
    assert status == 200 and "application/vnd.jupyter.widget-view+json" in body and "nowhere_module" in body


@pytest.mark.slow
@VOILA
def test_kernel_websocket_speaks_v1_only(served):
    "A websocket without the v1 subprotocol is refused; a text frame or a frame announcing 2**60 offsets closes the connection; a well-formed request is answered."
    import asyncio
    from jupyter_client.session import Session
    from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1, serialize_msg_to_ws_v1
    from tornado.httpclient import HTTPClientError
    from tornado.websocket import websocket_connect
    from urllib.parse import urlsplit
    status, page = _get(served.url)
    kernel = re.search(r'"kernelId":\s*"([0-9a-f-]{36})"', page).group(1)
    url = f"ws://127.0.0.1:{urlsplit(served.url).port}/api/kernels/{kernel}/channels?session_id=t&token={served.token}"
    v1 = "v1.kernel.websocket.jupyter.org"

    async def scenario():
        with pytest.raises(HTTPClientError) as refused: await websocket_connect(url)
        closed = {}
        for name, frame in (("text", '{"channel": "shell", "header": {"msg_type": "comm_info_request"}}'),
                            ("huge", (2**60).to_bytes(8, "little") + bytes(64))):
            conn = await websocket_connect(url, subprotocols=[v1])
            await conn.write_message(frame, binary=isinstance(frame, bytes))
            while await asyncio.wait_for(conn.read_message(), 30) is not None: pass
            closed[name] = conn.close_code
        conn = await websocket_connect(url, subprotocols=[v1])
        session = Session()
        await conn.write_message(serialize_msg_to_ws_v1(session.serialize(session.msg("kernel_info_request", {}))[2:], "shell"), binary=True)
        reply = None
        while reply is None:
            channel, parts = deserialize_msg_from_ws_v1(await asyncio.wait_for(conn.read_message(), 60))
            if json.loads(parts[0]).get("msg_type") == "kernel_info_reply": reply = json.loads(parts[3])
        conn.close()
        return refused.value.code, closed, reply

    code, closed, reply = asyncio.run(scenario())
    assert code == 400 and closed == {"text": 1008, "huge": 1008} and reply["status"] == "ok"


@pytest.mark.slow
@VOILA
def test_ten_page_loads_leave_at_most_two_kernels(served):
    "Each page load takes a kernel; pages that never connect (or went away) are culled: at most the preheated one and one more remain."
    for _ in range(10):
        status, body = _get(served.url)
        assert status == 200 and "widget-view+json" in body, body[-2000:]
    deadline = time.monotonic() + 90
    while len(_kernels(served.processes())) > 2 and time.monotonic() < deadline: time.sleep(1)
    assert len(_kernels(served.processes())) <= 2, served.log_tail()


@pytest.mark.slow
@VOILA
def test_sigterm_to_the_launcher_stops_every_process_it_started(tmp_path):
    "`kill <pid of ld4lg explore>` (SIGTERM) ends Voilà and its kernels, which run in sessions of their own: check the whole tree."
    import signal
    port = app.free_port()
    code = f"from ld4lg_edu.explorer_app import launch_explorer; launch_explorer(port={port}, model='nowhere_module:make')"
    env = {**os.environ, "PYTHONPATH": TESTS, "LD4LG_CACHE": str(tmp_path)}
    launcher = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in launcher.stdout:                                 # the launcher says where it is once a kernel is ready
            if f"127.0.0.1:{port}/?token=" in line: break
        tree = app._process_tree(launcher.pid)
        assert _kernels(tree) and any("explorer_server" in _cmdline(p) for p in tree), {p: _cmdline(p) for p in tree}
        launcher.send_signal(signal.SIGTERM)                         # the launcher only, as `kill PID` does
        launcher.wait(60)
        deadline = time.monotonic() + 20
        while app._alive(tree) and time.monotonic() < deadline: time.sleep(0.25)
        assert not app._alive(tree), {p: _cmdline(p) for p in app._alive(tree)}
    finally:
        if launcher.poll() is None: launcher.kill()


class _Planted:
    "Unpickling this would create a marker file: a stand-in for code an attacker plants in a cache folder."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (open, (self.marker, "w"))


def test_a_planted_cache_file_is_never_unpickled(tmp_path):
    "Maps are cached as plain arrays and read with allow_pickle=False: a file carrying a pickled object is refused and refitted."
    import pickle
    data, marker = torch.randn(30, 2, 4), tmp_path / "pwned"
    first = fit_projection(data, "pca", cache_dir=tmp_path / "cache")
    (path,) = (tmp_path / "cache").glob("projection-*.npz")
    for planted in (lambda: np.savez(path, meta=np.array([_Planted(str(marker))], dtype=object)),   # an object array
                    lambda: path.write_bytes(pickle.dumps(_Planted(str(marker))))):                 # a bare pickle
        planted()
        _PROJECTIONS.clear()
        with pytest.warns(UserWarning, match="fitting again"):
            refit = fit_projection(data, "pca", cache_dir=tmp_path / "cache")
        assert not marker.exists()
        np.testing.assert_allclose(refit.components, first.components)


def test_controls_are_checked_in_python_not_only_by_their_sliders(pipe, background):
    "A browser can raise a slider's max and send any value: the app checks each control against its own range."
    ex = DenoisingExplorer(Counting(pipe), background)
    ex.steps.max, ex.steps.value = 5000, 3000
    assert ex.sample() is None and "steps = 3000 is outside 1..100" in ex.status.value and not ex.sample_button.disabled
    assert ex.pipe.samples == 0                                                # refused before any sampling
    ce = ClusterExplorer(pipe, background, method="pca", per_class=2, steps=4, scales=(1, 2))
    ce.per_class.max, ce.per_class.value = 10_000, 9_999
    assert ce.sample() is None and "per class = 9999 is outside 1..32" in ce.status.value
