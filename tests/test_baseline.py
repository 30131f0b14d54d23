"""Tests for ld4lg_edu.baseline: nucleus filtering, label-prefix encoding, the padded loss, KV-cache sampling, train/save/load/resume."""
import json
import math

import pytest
import torch

from ld4lg_edu.baseline import (AR_PRESETS, ARBaseline, ar_loss, ar_model_config, collate_ar, encode_example,
                                nucleus_filter, prefix_ids, train_ar_baseline)
from ld4lg_edu.data import load_tokenizer

NAMES = ["animal", "plant", "food"]


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


@pytest.fixture(scope="module")
def untrained(tok):
    torch.manual_seed(0)
    return ARBaseline.build({"n_layer": 1, "n_embd": 32, "n_head": 2, "n_positions": 32}, NAMES, tok)


# ---------------------------------------------------------------- nucleus sampling
def test_nucleus_keeps_smallest_set_reaching_p():
    probs = torch.tensor([[0.4, 0.1, 0.3, 0.2], [0.97, 0.01, 0.01, 0.01]])
    out = nucleus_filter(probs.log(), top_p=0.65).softmax(-1)
    # row 0: 0.4 (< .65) then 0.3 -> 0.7 reaches p: keep {0.4, 0.3}; row 1: 0.97 alone reaches p
    torch.testing.assert_close(out[0], torch.tensor([0.4, 0.0, 0.3, 0.0]) / 0.7)
    torch.testing.assert_close(out[1], torch.tensor([1.0, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(nucleus_filter(probs.log(), 1.0).softmax(-1), probs)


def test_nucleus_rejects_bad_p():
    for p in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="top_p"):
            nucleus_filter(torch.zeros(1, 3), p)


def test_nucleus_sampling_frequencies():
    probs = torch.tensor([[0.6, 0.25, 0.1, 0.05]])
    filtered = nucleus_filter(probs.log(), 0.8).softmax(-1)
    draws = torch.multinomial(filtered.expand(40000, -1), 1, generator=torch.Generator().manual_seed(0)).flatten()
    freq = torch.bincount(draws, minlength=4) / 40000
    torch.testing.assert_close(freq, torch.tensor([0.6, 0.25, 0.0, 0.0]) / 0.85, atol=0.01, rtol=0)


# ---------------------------------------------------------------- encoding and loss
def test_prefix_and_encoding(tok):
    ids = encode_example(tok, "a small dog", label="plant", label_names=NAMES)
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert ids[:len(prefix_ids(tok, NAMES, 1))] == prefix_ids(tok, NAMES, 1)
    assert tok.decode(ids, skip_special_tokens=True) == " plant: a small dog"
    assert encode_example(tok, "a small dog") == [tok.bos_token_id] + tok("a small dog", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert len(encode_example(tok, "word " * 200, label=0, label_names=NAMES, max_length=20)) == 20
    with pytest.raises(ValueError, match="known labels"):
        prefix_ids(tok, NAMES, "mineral")
    with pytest.raises(ValueError, match="out of range"):
        prefix_ids(tok, NAMES, 7)
    with pytest.raises(ValueError, match="label=None"):
        prefix_ids(tok, None, 0)


@pytest.mark.parametrize("label,message", [("mineral", "unknown label 'mineral'; known labels: animal, plant, food"),
                                           (1.5, r"label 1\.5 is out of range: not a class id in \[0, 2\]"),
                                           (True, r"label True is out of range: not a class id in \[0, 2\]"),
                                           (3, "nor a known name; known labels: animal, plant, food")])
def test_a_bad_label_through_the_baseline_gets_the_one_label_check(untrained, label, message):
    "chapter 07's class_ids answers for the baseline too: no float or bool passes as a class id"
    with pytest.raises(ValueError, match=message):
        untrained.sample(1, label=label, max_new_tokens=2)


def test_padded_loss_equals_hand_cross_entropy(tok, untrained):
    model = untrained.model.eval()
    a, b = encode_example(tok, "a dog"), encode_example(tok, "a large striped cat that hunts at night")
    with torch.no_grad():
        nll_a = torch.nn.functional.cross_entropy(model(torch.tensor([a])).logits[0, :-1], torch.tensor(a[1:]), reduction="sum")
        nll_b = torch.nn.functional.cross_entropy(model(torch.tensor([b])).logits[0, :-1], torch.tensor(b[1:]), reduction="sum")
        batch = collate_ar([a, b], tok.pad_token_id)
        loss = ar_loss(model, batch)
    assert batch["input_ids"].shape == (2, len(b))
    assert (batch["labels"][0, len(a):] == -100).all() and (batch["attention_mask"][0, len(a):] == 0).all()
    expected = (nll_a + nll_b) / (len(a) - 1 + len(b) - 1)  # mean over every predicted real token
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


# ---------------------------------------------------------------- sampling
def test_kv_cache_sampling_equals_full_recompute(tok, untrained):
    head = prefix_ids(tok, NAMES, "food")
    ids = list(head)
    with torch.no_grad():
        for _ in range(10):
            ids.append(untrained.model(torch.tensor([ids])).logits[0, -1].argmax().item())
    expected = tok.decode(ids[len(head):], skip_special_tokens=True).strip()
    assert untrained.sample(3, label="food", top_p=1e-6, max_new_tokens=10) == [expected] * 3


def test_sampling_is_seeded(untrained):
    a = untrained.sample(4, label=1, seed=5, max_new_tokens=8)
    assert a == untrained.sample(4, label=1, seed=5, max_new_tokens=8)
    assert a != untrained.sample(4, label=1, seed=6, max_new_tokens=8)
    texts, labels = untrained.sample(4, label="plant", seed=5, max_new_tokens=8, return_labels=True)
    assert texts == a and labels == [1] * 4


def test_sampling_bad_arguments(untrained):
    with pytest.raises(ValueError, match="n must be"):
        untrained.sample(0)
    with pytest.raises(ValueError, match="temperature"):
        untrained.sample(2, temperature=0)
    with pytest.raises(ValueError, match="known labels"):
        untrained.sample(2, label="mineral")


def test_sampling_stops_at_eos(tok):
    "A model rigged to always predict </s> returns empty texts after a single step."
    torch.manual_seed(0)
    rigged = ARBaseline.build({"n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 32}, NAMES, tok)
    with torch.no_grad():
        ln = rigged.model.transformer.ln_f
        ln.weight.zero_(); ln.bias.zero_(); ln.bias[0] = 1.0              # every final hidden state = e_0
        rigged.model.lm_head.weight[tok.eos_token_id, 0] = 100.0           # tied: logit of </s> = 100
    texts, labels = rigged.sample(3, seed=0, return_labels=True)
    assert texts == ["", "", ""] and labels == [None] * 3


def test_model_chosen_label_is_recognised(tok, untrained):
    for i, name in enumerate(NAMES):
        ids = encode_example(tok, "some text", label=name, label_names=NAMES)[1:-1]
        label, rest = untrained._split_label(ids)
        assert label == i and tok.decode(rest).strip() == "some text"
    assert untrained._split_label(tok("no prefix here", add_special_tokens=False)["input_ids"])[0] is None


def test_presets_param_budget(tok):
    from transformers import GPT2LMHeadModel
    from ld4lg_edu.core import count_parameters
    course = count_parameters(GPT2LMHeadModel(ar_model_config("course", tok)))
    assert 8e6 < course < 16e6
    with pytest.raises(ValueError, match="unknown preset"):
        ar_model_config("huge")


# ---------------------------------------------------------------- train / save / load / resume
def test_train_save_load_resume(tmp_path):
    out = tmp_path / "ar"
    ar = train_ar_baseline("wordnet", "tiny", out_dir=out, steps=4, batch_size=8, valid_size=16)
    assert ar.meta["steps"] == 4 and ar.label_names == ["animal", "plant", "food", "artifact", "person", "location"]
    assert (out / "model.safetensors").exists() and (out / "checkpoints" / "step_000004").is_dir()
    meta = json.loads((out / "ar_baseline.json").read_text())
    assert meta["corpus"] == "wordnet" and meta["preset"] == "tiny"
    assert all("valid_loss" in row for row in meta["history"])
    loaded = ARBaseline.from_pretrained(out)
    assert loaded.sample(3, label="food", seed=0, max_new_tokens=6) == ar.sample(3, label="food", seed=0, max_new_tokens=6)
    resumed = train_ar_baseline("wordnet", "tiny", out_dir=out, steps=6, batch_size=8, valid_size=16, resume=True)
    assert resumed.meta["steps"] == 6 and [r["step"] for r in resumed.meta["history"]][0] == 4
    with pytest.raises(ValueError, match="different config"):
        train_ar_baseline("wordnet", "course", out_dir=out, steps=8, batch_size=8, resume=True)
    with pytest.raises(FileNotFoundError, match="no AR baseline"):
        ARBaseline.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="unknown preset"):
        train_ar_baseline("wordnet", "huge")


def test_saved_folder_is_a_reference_lm(tmp_path):
    from ld4lg_edu.metrics import perplexity
    ar = train_ar_baseline("wordnet", "tiny", out_dir=tmp_path / "ar", steps=2, batch_size=8, valid_size=8)
    ppl = perplexity(["a small dog", "any of various large snakes"], tmp_path / "ar")
    assert math.isfinite(ppl) and ppl > 1
