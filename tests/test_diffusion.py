"Behavioural tests of ld4lg_edu.diffusion (the notebook 06_diffusion holds the same ideas next to the code)."
import json

import pytest
import torch
from torch import nn

from ld4lg_edu.denoiser import DenoiserConfig
from ld4lg_edu.diffusion import (DiffusionConfig, LatentDataset, diffusion_loss, drop_cond, drop_labels, load_denoiser,
                                 loss_weight, read_denoiser_info, save_denoiser, train_diffusion, v_loss)
from ld4lg_edu.schedule import get_schedule, q_sample, v_target, x0_from_v


class Spy(nn.Module):
    "Stands in for a denoiser and records how diffusion_loss calls it."
    def __init__(self, num_classes=3, self_condition=True):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.num_classes = self.null_class = num_classes
        self.self_condition, self.calls = self_condition, []

    def forward(self, noisy, alpha, self_cond=None, class_labels=None, cond=None, cond_mask=None, self_cond_mask=None):
        self.calls.append(dict(grad=torch.is_grad_enabled(), self_cond=self_cond, labels=class_labels, cond_mask=cond_mask,
                               self_cond_mask=self_cond_mask))
        return self.w * noisy


def _toy(n=64, num_latents=8, latent_dim=16, labels=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, num_latents, latent_dim, generator=g)
    return LatentDataset(x, torch.randint(0, 2, (n,), generator=g) if labels else None)


def test_v_loss_is_snr_weighted_x_loss():
    torch.manual_seed(0)
    latents, noise, alpha = torch.randn(5, 3, 4), torch.randn(5, 3, 4), torch.rand(5) * 0.9 + 0.05
    noisy, v = q_sample(latents, alpha, noise), v_target(latents, noise, alpha)
    v_pred = v + torch.randn_like(v)
    x_err = (x0_from_v(noisy, v_pred, alpha) - latents).pow(2).mean((1, 2))
    assert torch.allclose(v_loss(v_pred, v), x_err / (1 - alpha), rtol=1e-4)
    assert torch.allclose(v_loss(v_pred, v, "l1"), (v_pred - v).abs().mean((1, 2)))
    snr = torch.tensor([0.1, 1.0, 10.0])
    assert torch.allclose(loss_weight(snr.log(), "min_snr", 5.0), torch.tensor([0.1 / 1.1, 0.5, 5 / 11]))
    with pytest.raises(ValueError, match="'none' or 'min_snr'"):
        loss_weight(snr, "p2")


def test_config_round_trip_and_presets():
    cfg = DiffusionConfig.preset("paper", train=dict(steps=7), time_weighting="min_snr")
    assert DiffusionConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert (cfg.train.steps, cfg.train.lr, cfg.train.decay, cfg.train.grad_clip, cfg.ema_decay) == (7, 2e-4, "cosine", 1.0, 0.9999)
    assert (cfg.self_cond_prob, cfg.label_drop_prob) == (0.5, 0.1)
    with pytest.raises(ValueError, match="unknown DiffusionConfig keys"):
        DiffusionConfig.from_dict({"lossy": 1})


def test_label_dropout_rate_is_p():
    torch.manual_seed(0)
    labels = torch.randint(0, 5, (200_000,))
    out = drop_labels(labels, 5, 0.1)
    rate = (out == 5).float().mean().item()
    assert abs(rate - 0.1) < 0.003  # binomial sd ≈ 0.0007
    assert torch.equal(out[out != 5], labels[out != 5])
    assert torch.equal(drop_labels(labels, 5, 0.0), labels)
    rows_dropped = (~drop_cond(torch.ones(100_000, 4, dtype=torch.bool), 0.1).any(1)).float().mean().item()
    assert abs(rows_dropped - 0.1) < 0.005


def test_training_loss_uses_label_dropout_and_self_conditioning_half_the_time():
    torch.manual_seed(0)
    spy, schedule, cfg = Spy(), get_schedule("cosine"), DiffusionConfig.preset("tiny")
    steps, B = 1500, 16
    for _ in range(steps):
        out = diffusion_loss(spy, torch.randn(B, 2, 3), schedule, cfg, class_labels=torch.randint(0, 3, (B,)))
    first = [c for c in spy.calls if not c["grad"]]
    trained = [c for c in spy.calls if c["grad"]]
    assert len(trained) == steps
    assert abs(len(first) / steps - 0.5) < 0.05                       # self-conditioning branch ≈ 50% of steps
    assert all(c["self_cond"] is None for c in first)
    fed = [c for c in trained if c["self_cond_mask"].all()]
    assert len(fed) == len(first)
    assert all(not c["self_cond"].requires_grad for c in fed)          # detached x̂0
    assert all(not c["self_cond_mask"].any() for c in trained if not c["self_cond_mask"].all())  # the rest masked out
    null_rate = torch.cat([c["labels"] for c in trained]).eq(spy.null_class).float().mean().item()
    assert abs(null_rate - 0.1) < 0.01                               # label dropout ≈ 10% of rows
    assert out["loss"].requires_grad and out["self_cond"] in (0.0, 1.0)


def test_no_self_conditioning_when_model_lacks_it():
    torch.manual_seed(0)
    spy = Spy(num_classes=0, self_condition=False)
    for _ in range(50):
        diffusion_loss(spy, torch.randn(4, 2, 3), get_schedule("cosine"), DiffusionConfig.preset("tiny"))
    assert all(c["grad"] and c["self_cond"] is None for c in spy.calls)


def test_tiny_denoiser_overfits_a_few_latents():
    data = LatentDataset(_toy(n=4).latents.repeat(8, 1, 1))  # 4 distinct latents; batches of 32 average over many t
    cfg = DiffusionConfig.preset("tiny", train=dict(steps=240, batch_size=32, lr=5e-3, log_every=20, checkpoint_every=1000))
    run = train_diffusion(data, DenoiserConfig.preset("tiny"), cfg)
    first, last = run.history[0]["loss"], run.history[-1]["loss"]
    assert last < 0.4 * first, (first, last)
    assert any(not torch.equal(p, q) for p, q in zip(run.denoiser.parameters(), run.ema_denoiser.parameters()))


def test_resume_reproduces_the_uninterrupted_run_exactly(tmp_path):
    class Killed(Exception): pass

    def kill_at(n):
        def cb(step, model, history):
            if step == n: raise Killed
        return cb

    data = _toy(n=96, labels=True)
    den = DenoiserConfig.preset("tiny", num_classes=2, dropout=0.1)
    cfg = DiffusionConfig.preset("tiny", train=dict(steps=24, batch_size=16, log_every=4, checkpoint_every=8))
    straight = train_diffusion(data, den, cfg, out_dir=tmp_path / "a")
    with pytest.raises(Killed):
        train_diffusion(data, den, cfg, out_dir=tmp_path / "b", callbacks=[kill_at(12)])  # last checkpoint: step 8
    resumed = train_diffusion(data, den, cfg, out_dir=tmp_path / "b", resume=True)
    for (name, p), q in zip(straight.denoiser.named_parameters(), resumed.denoiser.parameters()):
        assert torch.equal(p, q), name
    for p, q in zip(straight.ema_denoiser.parameters(), resumed.ema_denoiser.parameters()):
        assert torch.equal(p, q)
    assert straight.history == resumed.history
    with pytest.raises(ValueError, match="different config"):
        train_diffusion(data, den, DiffusionConfig.preset("tiny", train=dict(steps=24, batch_size=16, log_every=4, checkpoint_every=8),
                                                        label_drop_prob=0.2), out_dir=tmp_path / "b", resume=True)


def test_save_load_denoiser_and_refuse_mismatch(tmp_path):
    run = train_diffusion(_toy(n=32, labels=True), DenoiserConfig.preset("tiny", num_classes=2),
                          DiffusionConfig.preset("tiny", train=dict(steps=5, batch_size=16, log_every=5)), out_dir=tmp_path)
    loaded = load_denoiser(tmp_path / "ema_denoiser", expected_config=DenoiserConfig.preset("tiny", num_classes=2))
    for (name, p), q in zip(run.ema_denoiser.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(p, q), name
    assert read_denoiser_info(tmp_path / "denoiser")["schedule"] == {"name": "cosine", "scale": 1.0}
    with pytest.raises(ValueError, match="num_classes: saved 2 vs expected 3"):
        load_denoiser(tmp_path / "ema_denoiser", expected_config=DenoiserConfig.preset("tiny", num_classes=3))
    save_denoiser(run.denoiser, tmp_path / "copy")
    info = read_denoiser_info(tmp_path / "copy")
    info["config"]["depth"] = 2
    (tmp_path / "copy" / "denoiser.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="do not fit"):
        load_denoiser(tmp_path / "copy")
    with pytest.raises(FileNotFoundError, match="no saved denoiser"):
        load_denoiser(tmp_path / "nothing")


def test_latent_file_round_trip_and_shape_checks(tmp_path):
    data = _toy(n=10, labels=True)
    data.save(tmp_path / "lat.safetensors")
    back = LatentDataset.load(tmp_path / "lat.safetensors")
    assert torch.equal(back.latents, data.latents) and torch.equal(back.labels, data.labels)
    cfg = DiffusionConfig.preset("tiny", train=dict(steps=1, batch_size=4))
    with pytest.raises(ValueError, match="set DenoiserConfig\\(num_latents=8, latent_dim=16\\)"):
        train_diffusion(tmp_path / "lat.safetensors", DenoiserConfig.preset("tiny", num_classes=2, latent_dim=32), cfg)
    with pytest.raises(ValueError, match="set num_classes=2"):
        train_diffusion(tmp_path / "lat.safetensors", DenoiserConfig.preset("tiny"), cfg)
    with pytest.raises(ValueError, match="no labels"):
        train_diffusion(_toy(n=10).latents, DenoiserConfig.preset("tiny", num_classes=2), cfg)


def test_cross_attention_conditioning_trains():
    torch.manual_seed(0)
    n = 32
    cond, mask = torch.randn(n, 5, 6), torch.rand(n, 5) > 0.3
    data = LatentDataset(torch.randn(n, 8, 16), cond=cond, cond_mask=mask)
    run = train_diffusion(data, DenoiserConfig.preset("tiny", cond_dim=6), DiffusionConfig.preset("tiny", train=dict(steps=6, batch_size=8, log_every=3)))
    assert len(run.history) == 2 and all(torch.isfinite(torch.tensor(h["loss"])) for h in run.history)
    assert run.denoiser.cond_proj.weight.abs().sum() > 0


def test_saving_over_a_denoiser_is_atomic(tmp_path, monkeypatch):
    "A save stopped half-way leaves the earlier save loadable, bit for bit; a finished one replaces the folder whole."
    import safetensors.torch
    from ld4lg_edu.denoiser import Denoiser
    torch.manual_seed(0); a = Denoiser(DenoiserConfig.preset("tiny")); b = Denoiser(DenoiserConfig.preset("tiny"))
    save_denoiser(a, tmp_path / "d", max_shard_mb=0.05)
    real, calls = safetensors.torch.save_file, []
    def dies_on_second_shard(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2: raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)
    monkeypatch.setattr(safetensors.torch, "save_file", dies_on_second_shard)
    with pytest.raises(KeyboardInterrupt):
        save_denoiser(b, tmp_path / "d", max_shard_mb=0.05)
    monkeypatch.setattr(safetensors.torch, "save_file", real)
    for (name, p), q in zip(a.state_dict().items(), load_denoiser(tmp_path / "d").state_dict().values()):
        assert torch.equal(p, q), name                                       # the earlier save, not a mix
    save_denoiser(b, tmp_path / "d", max_shard_mb=0.05)
    for (name, p), q in zip(b.state_dict().items(), load_denoiser(tmp_path / "d").state_dict().values()):
        assert torch.equal(p, q), name
    names = set(read_denoiser_info(tmp_path / "d")["weights"])
    assert len(names) > 1 and sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(names | {"denoiser.json"})
    assert [p.name for p in tmp_path.iterdir()] == ["d"]          # nothing of the interrupted save is left beside it


def test_loader_refuses_unknown_formats_and_weights_outside_the_folder(tmp_path):
    from ld4lg_edu.denoiser import Denoiser
    save_denoiser(Denoiser(DenoiserConfig.preset("tiny")), tmp_path / "d")
    info = read_denoiser_info(tmp_path / "d")
    for change, message in (({"version": 99}, "up to version 1"), ({"format": "evil"}, "format 'evil'"),
                            ({"weights": ["../../outside/x.safetensors"]}, "outside its folder")):
        (tmp_path / "d" / "denoiser.json").write_text(json.dumps({**info, **change}))
        with pytest.raises(ValueError, match=message):
            load_denoiser(tmp_path / "d")
    (tmp_path / "elsewhere.safetensors").write_bytes((tmp_path / "d" / info["weights"][0]).read_bytes())
    (tmp_path / "d" / "link.safetensors").symlink_to(tmp_path / "elsewhere.safetensors")
    (tmp_path / "d" / "denoiser.json").write_text(json.dumps({**info, "weights": ["link.safetensors"]}))
    with pytest.raises(ValueError, match="links"):
        load_denoiser(tmp_path / "d")
    (tmp_path / "d" / "link.safetensors").unlink()                        # the folder check comes first: no link left
    (tmp_path / "d" / "denoiser.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_denoiser(tmp_path / "d")


def test_a_pipeline_refuses_repeated_class_names():
    from ld4lg_edu.pipeline import LatentDiffusionPipeline, tiny_pipeline
    pipe = tiny_pipeline(["animal", "plant"])
    with pytest.raises(ValueError, match="repeat a name"):
        LatentDiffusionPipeline(pipe.autoencoder, pipe.denoiser, pipe.schedule, label_names=["animal", "animal"])


def test_a_truncated_weights_file_is_named(tmp_path):
    from ld4lg_edu.denoiser import Denoiser
    save_denoiser(Denoiser(DenoiserConfig.preset("tiny")), tmp_path / "d")
    f = tmp_path / "d" / "model.safetensors"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(ValueError, match="model.safetensors is not a readable safetensors file"):
        load_denoiser(tmp_path / "d")


def test_a_pipeline_save_is_whole_or_not_at_all(tmp_path, monkeypatch):
    import ld4lg_edu.pipeline as pipeline_module
    from ld4lg_edu.pipeline import LatentDiffusionPipeline, tiny_pipeline
    old, new = tiny_pipeline(seed=0), tiny_pipeline(seed=1)
    old.save_pretrained(tmp_path / "p")
    def dies(*args, **kwargs): raise KeyboardInterrupt("killed while writing the denoiser")
    monkeypatch.setattr(pipeline_module, "save_denoiser", dies)
    with pytest.raises(KeyboardInterrupt):
        new.save_pretrained(tmp_path / "p")
    monkeypatch.undo()
    loaded = LatentDiffusionPipeline.from_pretrained(tmp_path / "p")
    for (name, p), q in zip(old.autoencoder.state_dict().items(), loaded.autoencoder.state_dict().values()):
        assert torch.equal(p, q), name                                   # the earlier pipeline, untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind
    (tmp_path / "runs").mkdir(); (tmp_path / "runs" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="no pipeline.json"):
        new.save_pretrained(tmp_path / "runs")
    (tmp_path / "p" / "pipeline.json").write_text("{broken")
    with pytest.raises(ValueError, match="pipeline.json is not valid JSON"):
        LatentDiffusionPipeline.from_pretrained(tmp_path / "p")


def test_latent_files_are_written_whole_and_unreadable_ones_named(tmp_path, monkeypatch):
    "LatentDataset.save writes through core.atomic_file (a failed write leaves the old file); load names a broken file."
    from ld4lg_edu.diffusion import LatentDataset
    path = tmp_path / "latents.safetensors"
    LatentDataset(torch.randn(4, 2, 3), torch.tensor([0, 1, 0, 1])).save(path)
    before = path.read_bytes()
    def half_write(tensors, filename):
        open(filename, "wb").write(b"half"); raise OSError("disk full")
    monkeypatch.setattr("safetensors.torch.save_file", half_write)
    with pytest.raises(OSError, match="disk full"):
        LatentDataset(torch.randn(4, 2, 3)).save(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["latents.safetensors"]
    (tmp_path / "cut.safetensors").write_bytes(before[:40])
    with pytest.raises(ValueError, match="cut.safetensors is not a readable safetensors file.*ld4lg encode"):
        LatentDataset.load(tmp_path / "cut.safetensors")
