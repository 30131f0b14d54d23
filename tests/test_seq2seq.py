"Chapter 09b's seq2seq model on a tiny random pipeline: shapes, guidance, MBR, save/load, the CLI, bad input."
import json

import pytest
import torch

from ld4lg_edu.cli import main
from ld4lg_edu.denoiser import Denoiser, DenoiserConfig
from ld4lg_edu.pipeline import LatentDiffusionPipeline, mbr_select, tiny_pipeline
from ld4lg_edu.seq2seq import (Seq2SeqPipeline, encode_pairs, finetune_lm, beam_generate, self_bleu, seq2seq_denoiser_config,
                               seq2seq_pairs, seq2seq_scores, source_features, train_seq2seq)

SOURCES = ["how do i learn python", "why is the sky blue", "what is a good book", "where do cats sleep"]
TARGETS = ["how can i learn python", "what makes the sky blue", "which book is good", "where does a cat sleep"]


@pytest.fixture(scope="module")
def ae():
    return tiny_pipeline(label_names=None).autoencoder


@pytest.fixture(scope="module")
def pipe(ae):
    torch.manual_seed(0)
    denoiser = Denoiser(seq2seq_denoiser_config(ae, "tiny"))
    with torch.no_grad():  # the output layer starts at zero: give the random model something to say
        for p in denoiser.parameters(): p.add_(0.05 * torch.randn_like(p)) if p.abs().sum() == 0 else None
    return Seq2SeqPipeline(ae, denoiser.eval(), steps=3)


def test_source_features_and_pairs_have_the_documented_shapes(ae, tmp_path):
    cond, mask = source_features(ae, SOURCES[:2])
    assert cond.shape == (2, mask.shape[1], ae.d_model) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [len(ae.tokenizer(s)["input_ids"]) for s in SOURCES[:2]]
    data = encode_pairs(ae, SOURCES, TARGETS, cache=tmp_path / "pairs.safetensors")
    assert data.latents.shape == (4, *ae.latent_shape) and data.cond.shape[:2] == data.cond_mask.shape
    assert (tmp_path / "pairs.safetensors").exists()
    with pytest.raises(ValueError, match="delete it"):  # a cache of other pairs is refused, not silently reused
        encode_pairs(ae, SOURCES[:2], TARGETS[:2], cache=tmp_path / "pairs.safetensors")


def test_generate_returns_k_candidates_per_source_and_the_mbr_pick(pipe):
    out = pipe.generate(SOURCES[:3], k=4, seed=0, num_beams=1)
    assert [len(c) for c in out.candidates] == [4, 4, 4] and out.latents.shape == (3, 4, pipe.num_latents, pipe.latent_dim)
    assert out.picks == [mbr_select(c, "bleu")[0] for c in out.candidates]
    assert out.texts == [c[p] for c, p in zip(out.candidates, out.picks)]
    first = pipe.generate(SOURCES[:3], k=4, seed=0, num_beams=1, mbr=False)
    assert first.picks == [0, 0, 0] and first.candidates == out.candidates
    assert pipe.generate(SOURCES[:3], k=1, seed=0, num_beams=1).picks == [0, 0, 0]
    assert pipe.generate(SOURCES[:3], k=2, seed=5, num_beams=1, batch_size=2).latents.shape[0] == 3  # chunked


def test_guidance_zero_ignores_the_source_and_other_w_do_not(pipe):
    def second(other, w):  # same seed, same batch position: only the source differs
        return pipe.generate([SOURCES[0], other], k=2, guidance_scale=w, seed=1, num_beams=1).latents[1]
    torch.testing.assert_close(second(SOURCES[1], 0.0), second(SOURCES[2], 0.0))
    assert (second(SOURCES[1], 1.0) - second(SOURCES[2], 1.0)).abs().max() > 1e-4
    assert (second(SOURCES[1], 3.0) - second(SOURCES[1], 1.0)).abs().max() > 1e-4


def test_mbr_picks_the_consensus_wherever_it_stands():
    group = ["how can i learn python fast", "how do i learn python fast", "what is the capital of peru",
             "how can i learn python quickly"]
    for shift in range(4):
        rotated = group[shift:] + group[:shift]
        assert rotated[mbr_select(rotated, "bleu")[0]] != "what is the capital of peru"


def test_self_bleu_is_100_for_copies_and_low_for_unrelated_texts():
    assert self_bleu([["a b c d e"] * 3]) == pytest.approx(100.0)
    assert self_bleu([["how do i learn python", "where do whales migrate", "cheap flights to rome"]]) < 10
    assert seq2seq_scores(TARGETS, TARGETS)["bleu"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="at least 2"): self_bleu([["one"]])


def test_bad_input_is_refused_by_name_before_any_work(pipe, ae):
    with pytest.raises(TypeError, match="list of strings"): pipe.generate("how?")
    with pytest.raises(ValueError, match=r"positions \[1\]"): pipe.generate(["ok", "  "])
    with pytest.raises(ValueError, match="k must"): pipe.generate(["ok"], k=0)
    with pytest.raises(ValueError, match="guidance_scale"): pipe.generate(["ok"], guidance_scale=float("nan"))
    with pytest.raises(ValueError, match="MBR metric"): pipe.generate(["ok"], metric="meteor")
    with pytest.raises(ValueError, match="cond_dim"):
        Seq2SeqPipeline(ae, Denoiser(seq2seq_denoiser_config(ae, "tiny", cond_dim=None)))
    from ld4lg_edu.data import Corpus
    toy = Corpus("toy", "unconditional", {s: [{"text": "a b"}] for s in ("train", "valid", "test")})
    with pytest.raises(ValueError, match="not seq2seq"): seq2seq_pairs(toy)
    with pytest.raises(ValueError, match="one target per source"): encode_pairs(ae, SOURCES, TARGETS[:2])
    with pytest.raises(ValueError, match="unknown preset"): train_seq2seq(ae, pairs=(SOURCES, TARGETS), preset="huge")


def test_save_load_round_trip_and_the_two_pipeline_kinds_stay_apart(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "s2s", dtype="float32")
    loaded = Seq2SeqPipeline.from_pretrained(tmp_path / "s2s")
    assert loaded.guidance_scale == pipe.guidance_scale and loaded.steps == pipe.steps
    a = pipe.generate(SOURCES[:2], k=2, seed=3, num_beams=1)
    b = loaded.generate(SOURCES[:2], k=2, seed=3, num_beams=1)
    assert a.candidates == b.candidates
    torch.testing.assert_close(a.latents, b.latents)
    with pytest.raises(ValueError, match="ld4lg_edu.seq2seq"): LatentDiffusionPipeline.from_pretrained(tmp_path / "s2s")
    tiny_pipeline().save_pretrained(tmp_path / "class")
    with pytest.raises(ValueError, match="not a 'ld4lg_edu.seq2seq'"): Seq2SeqPipeline.from_pretrained(tmp_path / "class")
    with pytest.raises(FileNotFoundError, match="missing"): Seq2SeqPipeline.from_pretrained(tmp_path / "nothing")


def test_train_seq2seq_lowers_the_loss_and_saves_a_loadable_pipeline(ae, tmp_path):
    pipe = train_seq2seq(ae, pairs=(SOURCES * 4, TARGETS * 4), out_dir=tmp_path / "run", preset="tiny", steps=30,
                         batch_size=8, lr=3e-3)
    losses = [h["loss"] for h in pipe.history]
    assert losses[-1] < losses[0]
    assert len(encode_pairs(ae, SOURCES * 8, TARGETS * 8, cache=tmp_path / "run" / "pairs.safetensors")) == 32  # both ways
    again = Seq2SeqPipeline.from_pretrained(tmp_path / "run" / "pipeline")
    assert again.generate(SOURCES[:1], k=2, seed=0, num_beams=1).candidates == pipe.generate(SOURCES[:1], k=2, seed=0, num_beams=1).candidates


def test_finetuned_encoder_decoder_learns_the_pairs(tmp_path):
    from transformers import BartForConditionalGeneration
    from ld4lg_edu.data import load_tokenizer
    from ld4lg_edu.lm import course_lm_config
    torch.manual_seed(0)
    tok = load_tokenizer()
    BartForConditionalGeneration(course_lm_config("tiny", vocab_size=len(tok))).save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    model, tok, history = finetune_lm(SOURCES * 8, TARGETS * 8, lm=tmp_path / "lm", steps=40, batch_size=8, lr=3e-3)
    assert history[-1]["loss"] < history[0]["loss"] - 1.0
    assert len(beam_generate(model, tok, SOURCES[:2], num_beams=2, max_length=16)) == 2
    with pytest.raises(ValueError, match="2 targets"): finetune_lm(SOURCES, TARGETS[:2], lm=tmp_path / "lm", steps=1)


def test_cli_trains_on_a_pairs_file_and_generates_one_line_per_source(ae, tmp_path, capsys):
    from ld4lg_edu.autoencoder import save_autoencoder
    save_autoencoder(ae, tmp_path / "ae", save_lm=True)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"src": s, "trg": t}) for s, t in zip(SOURCES * 4, TARGETS * 4)))
    main(["train-seq2seq", "--ae", str(tmp_path / "ae"), "--pairs", str(pairs), "--preset", "tiny", "--steps", "4",
          "--batch-size", "8", "--guidance", "2", "--device", "cpu", "--out", str(tmp_path / "run")])
    assert "pipeline saved to" in capsys.readouterr().out
    src = tmp_path / "src.txt"
    src.write_text("how do i learn python\nwhere do cats sleep\n")
    model = str(tmp_path / "run" / "pipeline")
    main(["generate", "--model", model, "--src", str(src), "--k", "3", "--steps", "2", "--seed", "0", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["guidance_scale"] == 2.0 and [o["source"] for o in out["outputs"]] == src.read_text().split("\n")[:2]
    assert all(len(o["candidates"]) == 3 and o["text"] in o["candidates"] for o in out["outputs"])
    main(["generate", "--model", model, "--src", str(src), "--k", "2", "--steps", "2", "--seed", "0"])
    assert len(capsys.readouterr().out.rstrip("\n").split("\n")) == 2
    src.write_text("how do i learn python\n\nwhere do cats sleep\n")
    with pytest.raises(SystemExit):
        main(["generate", "--model", model, "--src", str(src)])
    assert "line(s) [2] are blank" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["generate", "--model", model, "--src", str(tmp_path / "absent.txt")])
    assert "absent.txt is missing" in capsys.readouterr().err


def test_cli_overwrite_starts_a_fresh_run_and_without_it_the_folder_is_refused(ae, tmp_path, capsys):
    from ld4lg_edu.autoencoder import save_autoencoder
    from ld4lg_edu.diffusion import LatentDataset
    save_autoencoder(ae, tmp_path / "ae", save_lm=True)
    def pairs_file(name, n):
        path = tmp_path / name
        path.write_text("\n".join(json.dumps({"src": s, "trg": t}) for s, t in list(zip(SOURCES, TARGETS))[:n]))
        return str(path)
    run = tmp_path / "run"
    def train(pairs, *flags, steps="4"):
        main(["train-seq2seq", "--ae", str(tmp_path / "ae"), "--pairs", pairs, "--preset", "tiny", "--steps", steps,
              "--batch-size", "4", "--device", "cpu", "--out", str(run), *flags])
    train(pairs_file("old.jsonl", 4))
    assert sorted(p.name for p in (run / "diffusion").glob("step_*")) == ["step_000004"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop: train(pairs_file("new.jsonl", 2))     # refused as before
    assert stop.value.code == 2 and "--overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit): train(pairs_file("new.jsonl", 2), "--overwrite", "--resume")
    assert "pass one" in capsys.readouterr().err
    train(pairs_file("new.jsonl", 2), "--overwrite", steps="2")
    assert "trained 2 steps" in capsys.readouterr().out
    assert sorted(p.name for p in (run / "diffusion").glob("step_*")) == ["step_000002"]   # the old run's steps are gone
    assert len(LatentDataset.load(run / "pairs.safetensors")) == 4                    # the new pairs, both ways
