"`ld4lg sample` on both kinds of saved pipeline: texts from a one-latent pipeline, stories from a segment pipeline."
import json

import pytest
import torch

from ld4lg_edu.cli import main
from ld4lg_edu.denoiser import Denoiser, DenoiserConfig
from ld4lg_edu.pipeline import LatentDiffusionPipeline, tiny_pipeline
from ld4lg_edu.segments import SegmentDiffusionPipeline

S = 3  # max_segments of the test's segment pipeline


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    "A saved random segment pipeline (S sentences of ℓ × d_ae = 4 × 16) and a saved one-latent pipeline."
    root = tmp_path_factory.mktemp("pipelines")
    one = tiny_pipeline(label_names=("animal", "plant"))
    one.save_pretrained(root / "one")
    ae = tiny_pipeline(label_names=None).autoencoder
    l, d = ae.latent_shape
    torch.manual_seed(0)
    denoiser = Denoiser(DenoiserConfig(width=32, depth=2, heads=2, ff_mult=2, num_latents=S * l, latent_dim=d))
    with torch.no_grad():  # the output layer starts at zero: give the random model something to say
        denoiser.output_proj.weight.normal_(0, 0.02)
    SegmentDiffusionPipeline(ae, denoiser.eval(), S, steps=3, device="cpu").save_pretrained(root / "segments")
    return {"one": str(root / "one"), "segments": str(root / "segments")}


def sample(capsys, *argv) -> str:
    capsys.readouterr()
    main(["sample", "--device", "cpu", *argv])
    return capsys.readouterr().out


def refused(capsys, *argv) -> str:
    "The one-line error of a refused `ld4lg sample` (exit status 2)."
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop: main(["sample", "--device", "cpu", *argv])
    assert stop.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("n_sentences", [1, 2, S])
def test_segments_gives_every_story_that_many_sentences(folders, capsys, n_sentences):
    out = json.loads(sample(capsys, "--model", folders["segments"], "--n", "3", "--segments", str(n_sentences),
                            "--seed", "0", "--json"))
    assert [len(s) for s in out["sentences"]] == [n_sentences] * 3
    assert out["texts"] == [" ".join(s) for s in out["sentences"]]
    assert (out["segments"], out["max_segments"], out["steps"]) == (n_sentences, S, 3)
    lines = sample(capsys, "--model", folders["segments"], "--n", "3", "--segments", str(n_sentences), "--seed", "0")
    assert lines.splitlines() == out["texts"]                                      # one story per line, same seed


def test_without_segments_each_story_stops_where_the_model_ends_it(folders, capsys):
    out = json.loads(sample(capsys, "--model", folders["segments"], "--n", "4", "--seed", "1", "--json"))
    assert len(out["texts"]) == 4 and out["segments"] is None
    assert all(1 <= len(s) <= S for s in out["sentences"])


@pytest.mark.parametrize("bad", ["0", str(S + 1), "-2"])
def test_segments_outside_1_to_max_segments_is_refused_before_the_model_loads(folders, capsys, monkeypatch, bad):
    monkeypatch.setattr(SegmentDiffusionPipeline, "from_pretrained",
                        classmethod(lambda *a, **k: pytest.fail("the model was loaded before --segments was checked")))
    err = refused(capsys, "--model", folders["segments"], "--segments", bad)
    assert f"1..{S}" in err and "max_segments" in err and err.startswith("ld4lg sample: error:")


@pytest.mark.parametrize("model", ["one", "default"])
def test_segments_on_a_one_latent_pipeline_is_refused(folders, capsys, monkeypatch, model):
    monkeypatch.setattr(LatentDiffusionPipeline, "from_pretrained",
                        classmethod(lambda *a, **k: pytest.fail("the model was loaded before --segments was refused")))
    err = refused(capsys, "--model", folders.get(model, model), "--segments", "2")
    assert "segment pipeline" in err and "drop --segments" in err


@pytest.mark.parametrize("flags, message", [(["--label", "animal"], "--label: a segment pipeline is unconditional"),
                                            (["--guidance", "2"], "--guidance: a segment pipeline is unconditional"),
                                            (["--sampler", "distilled"], "distilled student"),
                                            (["--n", "-1"], "--n must be 0 or more")])
def test_options_a_segment_pipeline_cannot_use_are_refused(folders, capsys, flags, message):
    assert message in refused(capsys, "--model", folders["segments"], *flags)


def test_a_one_latent_pipeline_still_samples_texts_of_its_classes(folders, capsys):
    out = json.loads(sample(capsys, "--model", folders["one"], "--label", "plant", "--n", "2", "--steps", "2",
                            "--seed", "0", "--json"))
    assert len(out["texts"]) == 2 and out["label"] == "plant" and "sentences" not in out


def test_a_damaged_segments_json_is_named(folders, capsys, tmp_path):
    import shutil
    broken = tmp_path / "broken"
    shutil.copytree(folders["segments"], broken)
    meta = json.loads((broken / "segments.json").read_text())
    (broken / "segments.json").write_text(json.dumps({**meta, "max_segments": "three"}))
    err = refused(capsys, "--model", str(broken), "--segments", "2")
    assert "segments.json" in err and "max_segments" in err
