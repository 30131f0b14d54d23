"Behavioural tests of ld4lg_edu.lm (loading encoder-decoders, text infilling, course LM pretraining) on tiny CPU models."
import json
import warnings

import numpy as np
import pytest
import torch
from transformers import BartConfig, BartForConditionalGeneration, T5Config, T5ForConditionalGeneration

import ld4lg_edu.lm as lm_module
from ld4lg_edu.core import count_parameters
from ld4lg_edu.data import load_corpus, train_tokenizer
from ld4lg_edu.lm import (DenoisingCollator, course_lm_config, decoder_loss, encoder_features, generate_from_hidden,
                          lm_dims, lm_labels, load_lm, pretrain_course_lm, resolve_lm, text_infilling)




def _save(model, tokenizer, path):
    model.save_pretrained(path); tokenizer.save_pretrained(path)
    return path


def _tiny_bart(vocab):
    torch.manual_seed(0)
    return BartForConditionalGeneration(BartConfig(vocab_size=vocab, d_model=32, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64))


def _tiny_t5(vocab):
    torch.manual_seed(0)
    return T5ForConditionalGeneration(T5Config(vocab_size=vocab, d_model=32, d_kv=16, d_ff=64, num_layers=1, num_decoder_layers=1,
                                               num_heads=2, pad_token_id=1, eos_token_id=2, decoder_start_token_id=1))


@pytest.mark.parametrize("family", ["bart", "t5"])
def test_load_by_path_frozen_and_features_replace_encoder(tmp_path, tokenizer, family):
    build = _tiny_bart if family == "bart" else _tiny_t5
    model, tok = load_lm(_save(build(len(tokenizer)), tokenizer, tmp_path / family))
    assert count_parameters(model) == 0 and not model.training
    assert lm_dims(model) == {"model_type": family, "d_model": 32, "vocab_size": len(tokenizer)}
    batch = tok(["a small domesticated feline", "a tool"], padding=True, return_tensors="pt")
    hidden = encoder_features(model, batch["input_ids"], batch["attention_mask"])
    assert hidden.shape == (2, batch["input_ids"].shape[1], 32)
    # handing the encoder's own output to generate == generating from the text
    via_hidden = generate_from_hidden(model, hidden, batch["attention_mask"], num_beams=2, max_length=8)
    assert torch.equal(via_hidden, model.generate(**batch, num_beams=2, max_length=8))
    labels = lm_labels(batch["input_ids"], batch["attention_mask"])
    assert (labels == -100).sum() == (batch["attention_mask"] == 0).sum()
    torch.testing.assert_close(decoder_loss(model, hidden, labels, batch["attention_mask"]), model(**batch, labels=labels).loss)
    # hidden of any length ℓ works (all-ones mask by default)
    assert generate_from_hidden(model, torch.randn(3, 5, 32), max_length=6).shape[0] == 3


def test_unfrozen_load_trains(tmp_path, tokenizer):
    model, _ = load_lm(_save(_tiny_bart(len(tokenizer)), tokenizer, tmp_path / "b"), freeze=False)
    assert count_parameters(model) == count_parameters(model, trainable_only=False) > 0


def test_default_name_needs_the_course_lm(tmp_path, tokenizer, monkeypatch):
    monkeypatch.setattr(lm_module, "course_lm_path", lambda: tmp_path / "course_lm")
    with pytest.raises(FileNotFoundError, match="pretrain_course_lm"):
        resolve_lm("default")
    _save(_tiny_bart(len(tokenizer)), tokenizer, tmp_path / "course_lm")
    model, _ = load_lm("course")
    assert lm_dims(model)["d_model"] == 32
    assert resolve_lm("facebook/bart-base") == "facebook/bart-base"  # hub names pass through untouched


def test_text_infilling_statistics_and_invariants():
    rng = np.random.RandomState(0)
    tokens = list(range(10, 70))
    fractions, masks = [], []
    for _ in range(400):
        noisy = text_infilling(tokens, 4, rng=rng)
        kept = [t for t in noisy if t != 4]
        it = iter(tokens)
        assert all(t in it for t in kept)                      # survivors keep their order
        gaps = sum(1 for a, b in zip(kept, kept[1:]) if b != a + 1) + (kept[:1] != tokens[:1]) + (kept[-1:] != tokens[-1:])
        assert noisy.count(4) >= gaps                           # every hole is marked by a mask
        fractions.append(1 - len(kept) / len(tokens)); masks.append(noisy.count(4))
    assert 0.22 < np.mean(fractions) <= 0.30
    # Poisson(3) spans: ~18 tokens of budget / ~3 per span ≈ 4-7 masks on average
    assert 3 < np.mean(masks) < 8
    assert text_infilling(tokens, 4, mask_ratio=0.0) == tokens
    assert text_infilling(tokens, 4, rng=np.random.RandomState(5)) == text_infilling(tokens, 4, rng=np.random.RandomState(5))
    with pytest.raises(ValueError, match="mask_ratio"):
        text_infilling(tokens, 4, mask_ratio=1.5)


def test_denoising_collator_keeps_specials_and_clean_labels(tokenizer):
    np.random.seed(0)
    texts = ["a small domesticated carnivorous mammal with soft fur", "a tool"]
    batch = DenoisingCollator(tokenizer, max_length=64)(texts)
    clean = tokenizer(texts)["input_ids"]
    for i, ids in enumerate(clean):
        assert batch["labels"][i, :len(ids)].tolist() == ids and (batch["labels"][i, len(ids):] == -100).all()
        n = int(batch["attention_mask"][i].sum())
        assert batch["input_ids"][i, 0] == tokenizer.bos_token_id and batch["input_ids"][i, n - 1] == tokenizer.eos_token_id
    assert (batch["input_ids"][0] == tokenizer.mask_token_id).any()


def test_course_lm_presets_fit_the_size_budget():
    n = count_parameters(BartForConditionalGeneration(course_lm_config("course")))
    assert 4e6 < n < 5.5e6 and n * 2 / 2**20 < 10.5   # ~9 MiB in bf16
    assert course_lm_config("tiny").d_model < course_lm_config("course").d_model
    with pytest.raises(ValueError, match="choose one of"):
        course_lm_config("xl")


def test_pretrain_tiny_learns_saves_and_resumes(tmp_path, tok_dir, glosses, monkeypatch):
    texts = glosses[:256]
    out = tmp_path / "lm"
    r1 = pretrain_course_lm("tiny", out_dir=out, corpus=texts, tokenizer=tok_dir, steps=40, batch_size=16, lr=3e-3,
                            warmup_steps=5, log_every=10, checkpoint_every=20)
    losses = [h["loss"] for h in r1.history]
    assert losses[-1] < losses[0] - 0.5, losses
    model, tok = load_lm(out)
    assert (out / "model.safetensors").exists() and len(tok) == 400
    summary = json.loads((out / "pretrain_summary.json").read_text())
    assert summary["steps"] == 40 and summary["eval_denoising_loss"] < np.log(400) and summary["eval_on"] == "training texts"
    r2 = pretrain_course_lm("tiny", out_dir=out, corpus=texts, tokenizer=tok_dir, steps=50, batch_size=16, lr=3e-3,
                            warmup_steps=5, log_every=10, checkpoint_every=20, resume=True)
    assert r2.step == 50 and r2.history[:4] == r1.history
    saved = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    import ld4lg_edu.lm as lm_module
    def dies_while_saving(model, tokenizer, folder, save_dtype):
        (folder / "model.safetensors").write_bytes(b"half a file")
        raise KeyboardInterrupt  # a kill in the middle of writing
    monkeypatch.setattr(lm_module, "_save_course_lm", dies_while_saving)
    with pytest.raises(KeyboardInterrupt):
        pretrain_course_lm("tiny", out_dir=out, corpus=texts, tokenizer=tok_dir, steps=60, batch_size=16, lr=3e-3,
                           warmup_steps=5, log_every=10, checkpoint_every=20, resume=True)
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == saved  # the last whole model, untouched
    assert (out / "checkpoints").is_dir()
    with pytest.raises(ValueError, match="save_dtype"):
        pretrain_course_lm("tiny", out_dir=tmp_path / "x", corpus=texts, tokenizer=tok_dir, steps=1, save_dtype="int8")


def test_missing_local_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model folder at"):
        load_lm(tmp_path / "nothing here")
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        resolve_lm("./not/a/model")


def test_fixed_width_batches_have_static_shapes(tokenizer):
    np.random.seed(0)
    collate = DenoisingCollator(tokenizer, max_length=24, mask_ratio=0.3, fixed_width=True)
    for texts in (["a tool"], ["a small domesticated carnivorous mammal with soft fur", "a tool", "an animal"]):
        batch = collate(texts)
        assert batch["input_ids"].shape[1] == 24 + 8 and batch["labels"].shape[1] == 24   # 24 + ceil(0.3 * 24)
    with pytest.raises(ValueError, match="does not fit width"):
        lm_module.pad_sequences([[1, 2, 3]], 0, width=2)


def test_pretrain_with_a_new_vocabulary_saves_and_resumes_it(tmp_path, glosses):
    texts, out = glosses[:256], tmp_path / "lm"
    kw = dict(out_dir=out, corpus=texts, vocab_size=600, steps=6, batch_size=16, warmup_steps=1, log_every=3, checkpoint_every=3)
    pretrain_course_lm("tiny", **kw)
    model, tok = load_lm(out)
    assert len(tok) == 600 and model.config.vocab_size == 600 and (out / "checkpoints" / "tokenizer" / "tokenizer.json").exists()
    first = tok(texts[:5])["input_ids"]
    r = pretrain_course_lm("tiny", **{**kw, "steps": 9}, resume=True)                 # the saved vocabulary is reused
    assert r.step == 9 and load_lm(out)[1](texts[:5])["input_ids"] == first
    with pytest.raises(ValueError, match="not both"):
        pretrain_course_lm("tiny", out_dir=tmp_path / "x", corpus=texts, vocab_size=600, tokenizer=out, steps=1)
    with pytest.raises(ValueError, match="vocab_size=100"):
        pretrain_course_lm("tiny", out_dir=tmp_path / "x", corpus=texts, vocab_size=100, steps=1)
