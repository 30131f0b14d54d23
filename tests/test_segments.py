"Chapter 09c: sentences, segment latents, the learned stop, fixed segment counts, the pipeline, its folder, the CLI."
import json, warnings

import pytest
import torch

from ld4lg_edu.denoiser import Denoiser, DenoiserConfig
from ld4lg_edu.pipeline import tiny_pipeline
from ld4lg_edu.segments import (FixedSegments, SegmentDiffusionPipeline, encode_segments, flatten_segments,
                                segment_mask, segment_texts, split_sentences, train_segments, unflatten_segments)

S = 3


def small(**shape) -> DenoiserConfig:
    "A denoiser config small enough for a CPU test."
    return DenoiserConfig(**{"width": 32, "depth": 2, "heads": 2, "ff_mult": 2, **shape})


@pytest.fixture(scope="module")
def tiny_ae():
    "A random CPU-sized sentence autoencoder (ℓ × d_ae = 4 × 16)."
    return tiny_pipeline(label_names=None).autoencoder


@pytest.fixture(scope="module")
def pipe(tiny_ae):
    torch.manual_seed(0)
    l, d = tiny_ae.latent_shape
    denoiser = Denoiser(small(num_latents=S * l, latent_dim=d))
    with torch.no_grad():  # the output layer starts at zero: give the random model something to say
        denoiser.output_proj.weight.normal_(0, 0.02)
    return SegmentDiffusionPipeline(tiny_ae, denoiser.eval(), S, steps=4, device="cpu")


def test_split_sentences():
    assert split_sentences("Sam ran home. It rained!  Was he wet? Yes.") == [
        "Sam ran home.", "It rained!", "Was he wet?", "Yes."]
    assert split_sentences('Dr. Ng said "Go." So J. R. went.') == ['Dr. Ng said "Go."', "So J. R. went."]
    assert split_sentences("pi is 3.14 or so. 7 cats sat.") == ["pi is 3.14 or so.", "7 cats sat."]
    one = "lower case. after a period stays one sentence."
    assert split_sentences(one) == [one]
    assert split_sentences(" \n ") == []
    assert split_sentences("A. B. ran.") == ["A. B. ran."]                                  # initials, not ends
    with pytest.raises(TypeError, match="must be a str"): split_sentences(None)


def test_segment_texts_drops_and_refuses():
    with pytest.warns(UserWarning, match="1 of 2 text"):
        stories, kept = segment_texts(["One. Two.", "Aa. Bb. Cc. Dd."], max_segments=3)
    assert (stories, kept) == ([["One.", "Two."]], [0])
    with pytest.raises(ValueError, match="4 sentences, more than max_segments=3"):
        segment_texts(["Aa. Bb. Cc. Dd."], 3, too_long="error")
    with pytest.raises(ValueError, match="text 1 is empty"): segment_texts(["A.", ""], 3)
    with pytest.raises(TypeError, match="list of strings"): segment_texts("A. B.", 3)
    with pytest.raises(ValueError, match="max_segments"): segment_texts(["A."], 0)
    with pytest.raises(ValueError, match="too_long"): segment_texts(["A."], 2, too_long="cut")


def test_encode_segments_shapes_and_padding(tiny_ae):
    stories = [["The cat sat.", "It slept."], ["A dog barked."]]
    latents, mask = encode_segments(tiny_ae, stories, max_segments=S)
    assert latents.shape == (2, S, *tiny_ae.latent_shape)
    assert mask.tolist() == [[True, True, False], [True, False, False]]
    assert latents[~mask].abs().sum() == 0
    assert torch.allclose(latents[0, 1], tiny_ae.encode(["It slept."])[0], atol=1e-5)
    assert torch.equal(unflatten_segments(flatten_segments(latents), S), latents)
    with pytest.raises(ValueError, match="more than max_segments"):
        encode_segments(tiny_ae, [["a.", "b.", "c.", "d."]], S)
    with pytest.raises(ValueError, match="non-empty list"): encode_segments(tiny_ae, [[]], S)
    with pytest.raises(ValueError, match=r"\(N, S, ℓ, d_ae\)"): flatten_segments(latents[0])


def test_segment_mask_stops_at_first_padding():
    latents = torch.zeros(3, 4, 2, 8)
    latents[0, :2] = 1.0; latents[1, [0, 2, 3]] = 1.0; latents[2, :] = 1.0
    norm = 8 ** 0.5
    assert segment_mask(latents, norm).tolist() == [[True, True, False, False], [True, False, False, False], [True] * 4]
    assert segment_mask(torch.zeros(1, 2, 2, 8), norm).tolist() == [[True, False]]  # a story has a first sentence
    assert segment_mask(0.3 * latents, norm).tolist()[2] == [True, False, False, False]  # below half the norm: padding


def test_fixed_segments_sets_x0_through_v(pipe):
    l, d = pipe.autoencoder.latent_shape
    guide = FixedSegments(pipe.denoiser, torch.tensor([1, 3]), S, token_norm=pipe.token_norm)
    z, alpha = torch.randn(2, S * l, d), torch.tensor([0.2, 0.9])
    v = guide(z, alpha)
    x0 = unflatten_segments(alpha.sqrt()[:, None, None] * z - (1 - alpha).sqrt()[:, None, None] * v, S)
    assert x0[0, 1:].abs().max() < 1e-5 and x0[1, 1:].abs().max() > 1               # slots past the count are padding
    assert torch.allclose(x0[1].norm(dim=-1), torch.full((S, l), pipe.token_norm), atol=1e-4)
    assert segment_mask(x0, pipe.token_norm).sum(1).tolist() == [1, 3]


def test_sample_counts_shapes_and_errors(pipe):
    out = pipe.sample(3, segments=[1, 2, 3], seed=0, max_length=8)
    assert [len(s) for s in out.sentences] == [1, 2, 3] and out.mask.sum(1).tolist() == [1, 2, 3]
    assert out.latents.shape == (3, *pipe.latent_shape) and len(out.texts) == 3
    assert pipe.sample(3, segments=[1, 2, 3], seed=0, max_length=8).texts == out.texts      # a seed repeats
    free = pipe.sample(2, seed=1, max_length=8)
    assert free.mask.tolist() == segment_mask(free.latents, pipe.token_norm).tolist()
    assert pipe.sample(0).texts == []
    for bad, msg in ((0, "1..3"), (4, "1..3"), ([1, 2], "list of n=3"), (True, "list of n=3"), ("2", "list of n=3")):
        with pytest.raises(ValueError, match=msg): pipe.sample(3, segments=bad)
    with pytest.raises(ValueError, match="unknown sampler"): pipe.sample(1, sampler="euler")
    with pytest.raises(ValueError, match="non-negative int"): pipe.sample(-1)


def test_decode_checks_shapes(pipe):
    with pytest.raises(ValueError, match=r"\(B, S, ℓ, d_ae\)"): pipe.decode(torch.zeros(1, S + 1, 4, 16))
    with pytest.raises(ValueError, match="mask must be"):
        pipe.decode(torch.zeros(1, S, 4, 16), mask=torch.ones(1, S + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="more than max_segments=3"): pipe.encode(["Aa. Bb. Cc. Dd."])


def test_pipeline_refuses_mismatched_parts(tiny_ae):
    l, d = tiny_ae.latent_shape
    with pytest.raises(ValueError, match="pair pieces trained together"):
        SegmentDiffusionPipeline(tiny_ae, Denoiser(small(num_latents=S * l + 1, latent_dim=d)), S)
    with pytest.raises(ValueError, match="unconditional"):
        SegmentDiffusionPipeline(tiny_ae, Denoiser(small(num_latents=S * l, latent_dim=d, num_classes=2)), S)


def test_save_load_round_trip_and_bad_folders(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "p")
    loaded = SegmentDiffusionPipeline.from_pretrained(tmp_path / "p")
    assert (loaded.max_segments, loaded.token_norm, loaded.steps) == (pipe.max_segments, pipe.token_norm, pipe.steps)
    again = dict(segments=2, seed=3, max_length=8)
    assert loaded.sample(2, **again).texts == pipe.sample(2, **again).texts
    pipe.save_pretrained(tmp_path / "p")                                            # over an earlier save
    (tmp_path / "other").mkdir(); (tmp_path / "other" / "x.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="no segments.json"): pipe.save_pretrained(tmp_path / "other")
    with pytest.raises(FileNotFoundError, match="no segment pipeline"):
        SegmentDiffusionPipeline.from_pretrained(tmp_path / "none")
    meta = json.loads((tmp_path / "p" / "segments.json").read_text())
    (tmp_path / "p" / "segments.json").write_text(json.dumps({**meta, "max_segments": 5}))
    with pytest.raises(ValueError, match="pair pieces trained together"):
        SegmentDiffusionPipeline.from_pretrained(tmp_path / "p")
    (tmp_path / "p" / "segments.json").write_text(json.dumps({**meta, "max_segments": "3"}))
    with pytest.raises(ValueError, match="max_segments"): SegmentDiffusionPipeline.from_pretrained(tmp_path / "p")


def test_train_segments_learns_and_writes(tiny_ae, tmp_path):
    texts = ["Sam had a ball. He threw it.", "Kim ran. She won the race. Everyone cheered."] * 8
    pipe = train_segments(tiny_ae, texts, out_dir=tmp_path / "run", max_segments=S, preset="tiny", steps=40,
                          batch_size=8,
                          denoiser=dict(width=32, depth=2, heads=2), device="cpu")
    assert pipe.history[-1]["loss"] < pipe.history[0]["loss"]
    assert (tmp_path / "run" / "pipeline" / "segments.json").exists()
    assert (tmp_path / "run" / "latents.safetensors").exists()
    assert pipe.latent_shape == (S, *tiny_ae.latent_shape)
    with pytest.raises(FileExistsError, match="resume"):
        train_segments(tiny_ae, texts, out_dir=tmp_path / "run", preset="tiny")
    with pytest.raises(ValueError, match="unknown preset 'huge' of DenoiserConfig; choose one of course, paper, tiny"):
        train_segments(tiny_ae, texts, preset="huge")   # the one preset mechanism answers (core.Presets)


def test_cli_train_segments(shared_data, tmp_path, capsys):
    from ld4lg_edu.cli import main
    main(["train-segments", "--corpus", "rocstories-local", "--limit", "8", "--max-segments", "6", "--preset", "tiny",
          "--steps", "2", "--batch-size", "4", "--width", "32", "--depth", "2", "--heads", "2", "--device", "cpu",
          "--out", str(tmp_path / "run")])
    assert "pipeline written to" in capsys.readouterr().out
    assert SegmentDiffusionPipeline.from_pretrained(tmp_path / "run" / "pipeline").max_segments == 6
    with pytest.raises(SystemExit) as stop:
        main(["train-segments", "--corpus", "rocstories-local", "--max-segments", "0", "--out", str(tmp_path / "bad")])
    assert stop.value.code == 2 and "max_segments" in capsys.readouterr().err


def test_cli_overwrite_starts_a_fresh_run_and_without_it_the_folder_is_refused(tiny_ae, tmp_path, capsys):
    from ld4lg_edu.autoencoder import save_autoencoder
    from ld4lg_edu.cli import main
    from ld4lg_edu.diffusion import LatentDataset
    save_autoencoder(tiny_ae, tmp_path / "ae", save_lm=True)
    run = tmp_path / "run"
    def train(limit, *flags, steps="4"):
        main(["train-segments", "--ae", str(tmp_path / "ae"), "--corpus", "wordnet", "--limit", limit,
              "--max-segments", "3", "--preset", "tiny", "--steps", steps, "--batch-size", "4", "--width", "32",
              "--depth", "2", "--heads", "2", "--device", "cpu", "--out", str(run), *flags])
    train("8")
    assert sorted(p.name for p in (run / "diffusion").glob("step_*")) == ["step_000004"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop: train("6")                               # refused as before
    assert stop.value.code == 2 and "--overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit): train("6", "--overwrite", "--resume")
    assert "pass one" in capsys.readouterr().err
    train("6", "--overwrite", steps="2")
    assert "trained 2 steps" in capsys.readouterr().out
    assert sorted(p.name for p in (run / "diffusion").glob("step_*")) == ["step_000002"]   # the old run's steps are gone
    assert len(LatentDataset.load(run / "latents.safetensors")) == 6                  # the new texts, encoded again
