"Behavioural tests of ld4lg_edu.blocks, .autoencoder and .ae_training on tiny CPU models (BART and T5)."
import math
import warnings

import pytest
import torch
from transformers import BartConfig, BartForConditionalGeneration, T5Config, T5ForConditionalGeneration

from ld4lg_edu.core import count_parameters
from ld4lg_edu.data import load_corpus, load_tokenizer, train_tokenizer
from ld4lg_edu.lm import frozen, load_lm, pretrain_course_lm
from ld4lg_edu import autoencoder, blocks, denoiser
from ld4lg_edu.autoencoder import AutoencoderConfig, LanguageAutoencoder, load_autoencoder, save_autoencoder
from ld4lg_edu.blocks import PerceiverCompression
from ld4lg_edu.ae_training import (FeatureCache, FeatureCollator, cache_features, reconstruction_metrics,
                                   train_autoencoder)

TEXTS = ["a small domesticated carnivorous mammal", "a tool for cutting", "the capital of a country"]




def tiny_bart(vocab=400, d_model=32, seed=0):
    torch.manual_seed(seed)
    return BartForConditionalGeneration(BartConfig(vocab_size=vocab, d_model=d_model, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=2 * d_model, decoder_ffn_dim=2 * d_model,
        max_position_embeddings=64, dropout=0.0))


def tiny_t5(vocab=400, seed=0):
    torch.manual_seed(seed)
    return T5ForConditionalGeneration(T5Config(vocab_size=vocab, d_model=32, d_kv=16, d_ff=64, num_layers=1, num_decoder_layers=1,
                                               num_heads=2, pad_token_id=1, eos_token_id=2, decoder_start_token_id=1, dropout_rate=0.0))


def tiny_ae(lm, tokenizer, **overrides):
    torch.manual_seed(1)
    return LanguageAutoencoder(lm, tokenizer, AutoencoderConfig.preset("tiny", **overrides))


# ---------------------------------------------------------------- shapes, masks, both families

@pytest.mark.parametrize("family", ["bart", "t5"])
def test_end_to_end_encode_decode_loss(tokenizer, family):
    lm = tiny_bart() if family == "bart" else tiny_t5()
    ae = tiny_ae(lm, tokenizer, normalize=(family == "bart"))
    latents = ae.encode(TEXTS)
    assert latents.shape == (3, 4, 16) and latents.dtype == torch.float32
    if family == "bart":  # L2 normalised, scaled by √d_ae
        torch.testing.assert_close(latents.norm(dim=-1), torch.full((3, 4), 4.0))
    else:
        assert not torch.allclose(latents.norm(dim=-1), torch.full((3, 4), 4.0))
    loss = ae(ae.tokenize(TEXTS))
    assert torch.isfinite(loss) and abs(loss.item() - math.log(400)) < 1.0  # untrained: near a uniform guess
    out = ae.decode(latents, max_length=10)
    assert len(out) == 3 and all(isinstance(t, str) for t in out)
    assert ae.reconstruct(TEXTS[:1], num_beams=1, max_length=6) == ae.decode(latents[:1], num_beams=1, max_length=6)


def test_padding_never_changes_the_latent(tokenizer):
    ae = tiny_ae(tiny_bart(), tokenizer)
    batch = ae.tokenize(TEXTS)
    mask = batch["attention_mask"]
    assert (mask == 0).any()
    with torch.no_grad():
        x = ae.compression(ae.features(batch["input_ids"], mask), mask)
        scrambled = batch["input_ids"].clone()
        scrambled[mask == 0] = torch.randint(5, 400, (int((mask == 0).sum()),))    # other tokens in the padding
        x2 = ae.compression(ae.features(scrambled, mask), mask)
        features = ae.features(batch["input_ids"], mask)
        features[mask == 0] = 1e4                                                   # absurd features in the padding
        x3 = ae.compression(features, mask)
    torch.testing.assert_close(x2, x, atol=1e-5, rtol=0)
    torch.testing.assert_close(x3, x, atol=1e-5, rtol=0)
    for i, text in enumerate(TEXTS):  # a text's latent is the same alone as in a padded batch
        torch.testing.assert_close(ae.encode([text])[0], x[i], atol=1e-5, rtol=0)


def test_blocks_are_handed_out_by_the_autoencoder_module_too():
    "The networks live in chapter 03_0 (blocks); the autoencoder module and the denoiser use those same objects."
    for name in blocks.__all__:
        assert getattr(autoencoder, name) is getattr(blocks, name), name
        assert name not in autoencoder.__all__, name
    assert denoiser.Attention is blocks.Attention and denoiser.FeedForward is blocks.FeedForward


def test_perceiver_output_size_is_independent_of_length():
    f = PerceiverCompression(d_model=24, dim=16, num_latents=5, latent_dim=3, layers=2, heads=2, max_length=40, normalize=False)
    for L in (1, 7, 40):
        assert f(torch.randn(2, L, 24), torch.ones(2, L)).shape == (2, 5, 3)


# ---------------------------------------------------------------- training touches only f_φ, g_ψ

def test_training_step_changes_only_the_autoencoder(tokenizer):
    lm = tiny_bart()
    ae = tiny_ae(lm, tokenizer)
    assert count_parameters(ae) == count_parameters(ae.compression) + count_parameters(ae.reconstruction) > 0
    lm_before = {k: v.clone() for k, v in lm.state_dict().items()}
    ae_before = {k: v.clone() for k, v in list(ae.compression.state_dict().items()) + list(ae.reconstruction.state_dict().items())}
    opt = torch.optim.AdamW([p for p in ae.parameters() if p.requires_grad], lr=1e-2)
    ae.train()
    assert not lm.training  # a frozen LM stays in eval mode (no dropout) while f_φ, g_ψ train
    ae(ae.tokenize(TEXTS)).backward(); opt.step()
    for k, v in lm.state_dict().items(): assert torch.equal(v, lm_before[k]), k
    after = dict(list(ae.compression.state_dict().items()) + list(ae.reconstruction.state_dict().items()))
    changed = [k for k in ae_before if not torch.equal(ae_before[k], after[k])]
    assert any(k.startswith("project_out") for k in changed) and len(changed) > len(ae_before) // 2


def test_unfrozen_lm_trains_too(tokenizer):
    lm = tiny_bart()
    ae = tiny_ae(lm, tokenizer, freeze_lm=False)
    assert count_parameters(ae) == count_parameters(ae, trainable_only=False)
    before = lm.model.shared.weight.clone()
    torch.optim.SGD(ae.parameters(), lr=1.0).zero_grad()
    ae(ae.tokenize(TEXTS)).backward()
    assert lm.model.shared.weight.grad is not None and lm.model.shared.weight.grad.abs().sum() > 0
    assert torch.equal(before, lm.model.shared.weight)


# ---------------------------------------------------------------- bad input

def test_bad_inputs_fail_loudly(tokenizer):
    ae = tiny_ae(tiny_bart(), tokenizer)
    assert ae.encode([]).shape == (0, 4, 16)
    assert ae.decode(torch.zeros(0, 4, 16)) == []
    with pytest.raises(ValueError, match=r"positions \[0, 2\] are empty"):
        ae.encode(["", "fine", "  \n"])
    with pytest.raises(TypeError, match="wrap a single text"):
        ae.encode("one string")
    with pytest.raises(ValueError, match=r"\(B, ℓ, d_ae\) = \(B, 4, 16\)"):
        ae.decode(torch.zeros(4, 16))
    with pytest.raises(ValueError, match=r"got \(1, 5, 16\)"):
        ae.decode(torch.zeros(1, 5, 16))
    with pytest.raises(ValueError, match="floating point"):
        ae.decode(torch.zeros(1, 4, 16, dtype=torch.long))
    with pytest.raises(ValueError, match="torch.Tensor"):
        ae.decode([[0.0] * 16] * 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x = ae.encode(["word " * 40, "short", "word " * 50])
    msgs = [str(w.message) for w in caught]
    assert len(msgs) == 1 and msgs[0].startswith("2 of 3 text(s) are longer than max_length=32")
    assert x.shape == (3, 4, 16) and ae.truncated == 2
    with pytest.raises(ValueError, match="exceeds the LM's 64 positions"):
        tiny_ae(tiny_bart(), tokenizer, max_length=65)


# ---------------------------------------------------------------- save / load

def test_save_load_identical_and_mismatches_refused(tmp_path, tokenizer):
    lm_dir = tmp_path / "lm"
    tiny_bart().save_pretrained(lm_dir); tokenizer.save_pretrained(lm_dir)
    ae = tiny_ae(*load_lm(lm_dir), num_latents=3)
    save_autoencoder(ae, tmp_path / "ae")
    back = load_autoencoder(tmp_path / "ae")  # LM found by the path recorded in the config
    assert back.config == ae.config and back.config.lm == str(lm_dir)
    assert torch.equal(back.encode(TEXTS), ae.encode(TEXTS))
    latents = torch.randn(2, 3, 16)
    assert back.decode(latents, max_length=8) == ae.decode(latents, max_length=8)
    with pytest.raises(ValueError, match="d_model=32, vocab_size=400.*d_model=48"):
        load_autoencoder(tmp_path / "ae", lm=frozen(tiny_bart(d_model=48)), tokenizer=tokenizer)
    with pytest.raises(ValueError, match="vocab_size=500"):
        load_autoencoder(tmp_path / "ae", lm=frozen(tiny_bart(vocab=500)), tokenizer=tokenizer)
    with pytest.raises(ValueError, match="tokenizer="):
        load_autoencoder(tmp_path / "ae", lm=frozen(tiny_bart()))
    # weights that do not match the config: refused before anything is loaded
    other = tiny_ae(tiny_bart(), tokenizer, num_latents=5)
    save_autoencoder(other, tmp_path / "other")
    (tmp_path / "ae" / "autoencoder.safetensors").write_bytes((tmp_path / "other" / "autoencoder.safetensors").read_bytes())
    with pytest.raises(ValueError, match="does not match its config"):
        load_autoencoder(tmp_path / "ae")


def test_fine_tuned_lm_is_saved_alongside(tmp_path, tokenizer):
    ae = tiny_ae(tiny_bart(), tokenizer, freeze_lm=False)
    with torch.no_grad(): ae.lm.model.shared.weight.add_(0.1)  # as if fine-tuned
    with pytest.raises(ValueError, match="save_lm=True"):
        save_autoencoder(ae, tmp_path / "no", save_lm=False)
    save_autoencoder(ae, tmp_path / "ae")
    assert (tmp_path / "ae" / "lm" / "config.json").exists()
    back = load_autoencoder(tmp_path / "ae")
    assert torch.equal(back.lm.model.shared.weight, ae.lm.model.shared.weight)
    assert torch.equal(back.encode(TEXTS), ae.encode(TEXTS))


# ---------------------------------------------------------------- metrics

def test_reconstruction_metrics_values():
    refs = ["the cat sat on the mat", "a tool for cutting wood"]
    m = reconstruction_metrics(refs, refs)
    assert all(abs(v - 100) < 1e-9 for v in m.values())
    m = reconstruction_metrics(refs[:1], ["the cat on the mat"])
    assert abs(m["rougeL"] - 100 * 2 * (5 / 6) / (1 + 5 / 6)) < 1e-6 and m["exact"] == 0 and 0 < m["bleu"] < 100
    assert reconstruction_metrics(["dogs bark"], ["quantum chromodynamics"])["rougeL"] == 0
    with pytest.raises(ValueError, match="one hypothesis per reference"):
        reconstruction_metrics(refs, refs[:1])


# ---------------------------------------------------------------- the real thing: exact reconstruction through a frozen LM

@pytest.fixture(scope="module")
def pretrained_tiny_lm(tmp_path_factory, tok_dir, tokenizer, glosses):
    """A tiny course LM pretrained (BART text infilling) on 32 short definitions. A *random* frozen decoder cannot be
    driven through its cross-attention (loss stays ≈ ln V), so the frozen-LM overfit test needs a pretrained one."""
    pool = [g for g in glosses[100:1000] if len(tokenizer(g)["input_ids"]) <= 16][:32]
    out = tmp_path_factory.mktemp("lm")
    pretrain_course_lm("tiny", out_dir=out, corpus=pool, tokenizer=tok_dir, steps=150, batch_size=32, lr=3e-3,
                       warmup_steps=20, log_every=50)
    return out, pool


def test_tiny_autoencoder_overfits_to_exact_reconstruction_with_frozen_lm(tmp_path, pretrained_tiny_lm):
    lm_dir, pool = pretrained_tiny_lm
    sentences = pool[:8]
    lm, tok = load_lm(lm_dir)
    lm_before = {k: v.clone() for k, v in lm.state_dict().items()}
    ae = LanguageAutoencoder(lm, tok, AutoencoderConfig.preset("tiny", num_latents=8, latent_dim=16))
    ae, result = train_autoencoder(ae, sentences, out_dir=tmp_path / "ae", steps=60, batch_size=8, lr=3e-3,
                                   warmup_steps=10, log_every=20, sample_texts=sentences[:1])
    assert ae.reconstruct(sentences) == sentences
    assert result.samples[-1]["reconstructions"] == sentences[:1]
    for k, v in lm.state_dict().items(): assert torch.equal(v, lm_before[k]), k
    assert reconstruction_metrics(sentences, ae.reconstruct(sentences))["exact"] == 100
    # distinct sentences need distinct latents: the information really is in x
    x = ae.encode(sentences)
    assert torch.cdist(x.flatten(1), x.flatten(1)).fill_diagonal_(1e9).min() > 0.1
    # save -> load -> identical latents and reconstructions
    back = load_autoencoder(tmp_path / "ae")
    assert torch.equal(back.encode(sentences), x) and back.reconstruct(sentences) == sentences
    # resume continues the same run
    _, r2 = train_autoencoder(back, sentences, out_dir=tmp_path / "ae", steps=70, batch_size=8, lr=3e-3,
                              warmup_steps=10, log_every=20, resume=True, sample_texts=[])
    assert r2.step == 70 and r2.history[:3] == result.history


def test_feature_cache_matches_live_encoder_and_trains(tmp_path, pretrained_tiny_lm):
    lm_dir, pool = pretrained_tiny_lm
    lm, tok = load_lm(lm_dir)
    ae = LanguageAutoencoder(lm, tok, AutoencoderConfig.preset("tiny"))
    path = cache_features(ae, pool, tmp_path / "f.safetensors", batch_size=8)
    cache = FeatureCache(path, ae)
    assert len(cache) == len(pool)
    batch = FeatureCollator(tok.pad_token_id)([cache[i] for i in range(5)])
    live = ae.tokenize(pool[:5])
    assert torch.equal(batch["input_ids"], live["input_ids"]) and torch.equal(batch["attention_mask"], live["attention_mask"])
    with torch.no_grad():
        feats = ae.features(live["input_ids"], live["attention_mask"])
        real = live["attention_mask"].bool()
        torch.testing.assert_close(batch["features"][real].float(), feats[real], atol=0.05, rtol=0.02)  # bf16 storage
        assert abs(ae(batch).item() - ae(live).item()) < 0.02
    _, r = train_autoencoder(ae, None, cache=path, steps=20, batch_size=8, lr=3e-3, warmup_steps=2, log_every=5)
    assert r.history[-1]["loss"] < r.history[0]["loss"]
    unfrozen = LanguageAutoencoder(tiny_bart(vocab=400, d_model=64), tok, AutoencoderConfig.preset("tiny", freeze_lm=False))
    with pytest.raises(ValueError, match="frozen LM"):
        cache_features(unfrozen, pool[:2], tmp_path / "g.safetensors")
    with pytest.raises(ValueError, match="width 64"):
        FeatureCache(path, tiny_ae(tiny_bart(), tok))


# ---------------------------------------------------------------- robustness training (latent noise, masking, decoder)

def test_trained_decoder_keeps_encoder_and_embeddings_and_saves_alongside(tmp_path, tokenizer):
    ae = tiny_ae(tiny_bart(), tokenizer, train_decoder=True, latent_noise=0.5, feature_mask=0.3)
    encoder_before = {k: v.clone() for k, v in ae.lm.get_encoder().state_dict().items()}
    batch = {k: v for k, v in tokenizer(TEXTS, padding=True, return_tensors="pt").items()}
    train_autoencoder(ae, TEXTS * 4, steps=5, batch_size=4, lr=1e-2, warmup_steps=1, log_every=5, sample_texts=[])
    for k, v in ae.lm.get_encoder().state_dict().items():
        assert torch.equal(v, encoder_before[k]), f"encoder weight {k} changed"   # cached features stay valid
    decoder_layer = ae.lm.model.decoder.layers[0].fc1.weight
    assert decoder_layer.requires_grad and not ae.lm.model.shared.weight.requires_grad
    ae.eval()
    assert ae(batch).item() == ae(batch).item()                                     # no perturbation outside training
    ae.train()
    torch.manual_seed(0); a = ae(batch).item()
    torch.manual_seed(1); b = ae(batch).item()
    assert a != b                                                                    # training mode perturbs
    save_autoencoder(ae, tmp_path / "ae")                                            # the tuned decoder travels with it
    back = load_autoencoder(tmp_path / "ae")
    assert torch.equal(back.lm.model.decoder.layers[0].fc1.weight, decoder_layer.detach())
    assert back.config.train_decoder and back.config.latent_noise == 0.5


def test_course_preset_trains_on_the_shipped_lm_offline():
    "The presets name the LM 'default': every install has it (the shipped model's), so no hub and no pretraining."
    ae, result = train_autoencoder("course", data=["a small dog", "a tool for cutting wood"], steps=1, batch_size=2)
    assert ae.config.lm == "default" and ae.d_model == 192 and len(result.history) == 1
