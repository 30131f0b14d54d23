"The fast training loop: device batches give the same run as a DataLoader, value checks leave the hot loop, compile trains."
import shutil, tempfile
from pathlib import Path

import pytest
import torch
from torch import nn

from ld4lg_edu import core
from ld4lg_edu.core import list_checkpoints, trusted_inputs, value_checks
from ld4lg_edu.schedule import get_schedule
from ld4lg_edu.training import EMA, TensorData, TrainConfig, fit


def make_net(dropout=0.1):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 16), nn.Dropout(dropout), nn.Tanh(), nn.Linear(16, 1))


def data(n=96):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    return x, x.sum(1, keepdim=True).sin()


def mse(model, batch):
    return ((model(batch["x"]) - batch["y"]) ** 2).mean()


def test_device_batches_equal_the_dataloader_run():
    x, y = data()
    cfg = TrainConfig(steps=40, batch_size=16, lr=1e-2, warmup_steps=5, log_every=10)
    rows = [{"x": a, "y": b} for a, b in zip(x, y)]                      # the DataLoader path (per-row collation)
    slow, fast = make_net(), make_net()
    ema_slow, ema_fast = EMA(slow, 0.9), EMA(fast, 0.9)
    a = fit(slow, mse, rows, cfg, ema=ema_slow)
    b = fit(fast, mse, TensorData(x=x, y=y), cfg, ema=ema_fast)
    for p, q in zip(slow.parameters(), fast.parameters()): assert torch.equal(p, q)
    for k in ema_slow.shadow: assert torch.equal(ema_slow.shadow[k], ema_fast.shadow[k])
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert [s for s, _ in b.timings] == [10, 20, 30, 40] and all(t > 0 for _, t in b.timings)


def test_value_checks_are_off_inside_fit_unless_debugging():
    schedule, seen = get_schedule("cosine"), []
    def loss(model, batch):
        seen.append(value_checks())
        schedule.alpha(torch.full((2,), 1.5))                               # out of range: only a value check sees it
        return mse(model, batch)
    x, y = data(32)
    fit(make_net(), loss, TensorData(x=x, y=y), TrainConfig(steps=2, batch_size=16, warmup_steps=1, log_every=1))
    assert seen == [False, False] and value_checks()
    with pytest.raises(ValueError, match="t must lie in"):
        fit(make_net(), loss, TensorData(x=x, y=y), TrainConfig(steps=2, batch_size=16, warmup_steps=1, debug_checks=True))
    with trusted_inputs(), pytest.raises(ValueError, match="t must lie in"), trusted_inputs(False):
        schedule.alpha(torch.tensor(2.0))


def test_compiled_fit_trains_like_eager():
    x, y = data()
    cfg = TrainConfig(steps=30, batch_size=16, lr=1e-2, warmup_steps=5, log_every=10)
    eager = fit(make_net(0.0), mse, TensorData(x=x, y=y), cfg)   # no dropout: compiled code draws other random numbers
    compiled = fit(make_net(0.0), mse, TensorData(x=x, y=y), TrainConfig(**{**cfg.to_dict(), "compile": True, "compile_mode": "default"}))
    assert compiled.history[-1]["loss"] < compiled.history[0]["loss"]
    assert abs(compiled.history[-1]["loss"] - eager.history[-1]["loss"]) < 1e-3 * max(1.0, eager.history[-1]["loss"])


def test_cli_batch_size_scales_lr_and_compile_flags():
    from ld4lg_edu.cli import build_parser, train_overrides
    parser = build_parser()
    args = parser.parse_args(["train-diffusion", "--latents", "x", "--out", "y", "--batch-size", "1024", "--compile"])
    train = train_overrides(TrainConfig(batch_size=256, lr=3e-4), args)
    assert train.batch_size == 1024 and abs(train.lr - 6e-4) < 1e-12 and train.compile and train.compile_mode == "reduce-overhead"
    explicit = train_overrides(TrainConfig(batch_size=256, lr=3e-4), parser.parse_args(
        ["train-diffusion", "--latents", "x", "--out", "y", "--batch-size", "1024", "--lr", "1e-4"]))
    assert explicit.lr == 1e-4 and not explicit.compile
    with pytest.raises(SystemExit):
        parser.parse_args(["train-ar", "--out", "y", "--compile"])   # the AR baseline has no compiled path
    assert TrainConfig(compile=True).recipe() == TrainConfig().recipe()  # resume may switch compile on or off


def test_cuda_graph_needs_one_cuda_device_and_is_not_part_of_the_recipe():
    x, y = data(32)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda_graph needs one CUDA device"):
            fit(make_net(), mse, TensorData(x=x, y=y), TrainConfig(steps=2, batch_size=16, cuda_graph=True))
    assert TrainConfig(cuda_graph=True, workers=4).recipe() == TrainConfig().recipe()
    with pytest.raises(ValueError, match="workers"):
        TrainConfig(workers=-1)


def test_host_coins_come_from_the_cpu_generator_or_from_the_steps_script():
    "Without a script a host coin is torch.rand(()) < p; a script forces the outcomes and insists on their number."
    from ld4lg_edu.training import coin_script, host_coin
    torch.manual_seed(3); free = [host_coin(0.5) for _ in range(16)]
    torch.manual_seed(3); assert free == [torch.rand(()).item() < 0.5 for _ in range(16)] and len(set(free)) == 2
    with coin_script((True, False)) as script: assert (host_coin(0.1), host_coin(0.9)) == (True, False)
    assert script.probs == [0.1, 0.9]
    with pytest.raises(RuntimeError, match="more host coins"):
        with coin_script((True,)): host_coin(0.5); host_coin(0.5)
    with pytest.raises(RuntimeError, match="drew 1 host coins, 2"):
        with coin_script((True, True)): host_coin(0.5)


def test_self_conditioning_follows_the_host_coin():
    "The diffusion loss's self-conditioning branch is a host coin, so a StepGraph can pick one graph per outcome."
    from ld4lg_edu.denoiser import Denoiser, DenoiserConfig
    from ld4lg_edu.diffusion import DiffusionConfig, diffusion_loss
    from ld4lg_edu.training import coin_script
    model = Denoiser(DenoiserConfig.preset("tiny", latent_dim=8, num_classes=3, dropout=0.0))
    schedule, config = get_schedule("cosine"), DiffusionConfig()
    latents, labels = torch.randn(4, 8, 8), torch.tensor([0, 1, 2, 0])
    calls = []
    model.register_forward_hook(lambda module, args, out: calls.append(1))
    for kept, passes in ((True, 2), (False, 1)):           # kept: the estimate's extra pass, then the prediction
        calls.clear()
        with coin_script((kept,)) as script: out = diffusion_loss(model, latents, schedule, config, labels)
        assert out["self_cond"] == float(kept) and script.probs == [config.self_cond_prob] and len(calls) == passes


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_step_graph_trains_like_the_eager_loop_on_cuda(tmp_path):
    "The whole step (AdamW, EMA, clipping) in graphs: the same losses as eager; one graph per coin outcome; resumable."
    from ld4lg_edu.training import StepGraph, host_coin
    x, y = data(512)
    cfg = TrainConfig(steps=60, batch_size=64, lr=1e-2, warmup_steps=5, log_every=20, grad_clip=1.0)
    nets = [make_net(0.0), make_net(0.0)]
    emas = [EMA(n, 0.9) for n in nets]
    eager = fit(nets[0], mse, TensorData(x=x, y=y), cfg, ema=emas[0])
    graph = fit(nets[1], mse, TensorData(x=x, y=y), TrainConfig(**{**cfg.to_dict(), "cuda_graph": True}), ema=emas[1])
    for a, b in zip(eager.history, graph.history): assert abs(a["loss"] - b["loss"]) < 1e-3 * max(1.0, a["loss"]), (a, b)
    for k in emas[0].shadow: assert torch.allclose(emas[0].shadow[k], emas[1].shadow[k], atol=1e-4), k
    captured = []
    def coin_loss(model, batch):                           # a host branch: each outcome gets its own graph
        keep = host_coin(0.5)
        return {"loss": mse(model, batch) * (2.0 if keep else 1.0), "kept": float(keep)}
    real_capture = StepGraph._capture
    def spy(self, batch, outcomes): captured.append(outcomes); real_capture(self, batch, outcomes)
    StepGraph._capture = spy
    try:
        run = fit(make_net(0.0), coin_loss, TensorData(x=x, y=y), TrainConfig(**{**cfg.to_dict(), "cuda_graph": True,
                  "checkpoint_every": 30}), out_dir=tmp_path / "run")
    finally: StepGraph._capture = real_capture
    assert sorted(captured) == [(False,), (True,)]
    assert 0.2 < sum(h["kept"] for h in run.history) / len(run.history) < 0.8
    more = fit(make_net(0.0), coin_loss, TensorData(x=x, y=y), TrainConfig(**{**cfg.to_dict(), "steps": 80}),
               out_dir=tmp_path / "run", resume=True)   # a graph run's checkpoint resumes eagerly
    assert more.step == 80 and [h["step"] for h in more.history][:3] == [20, 40, 60]


def test_a_fresh_run_refuses_a_folder_that_holds_another_runs_checkpoints(tmp_path):
    x, y = data(32)
    cfg = TrainConfig(steps=4, batch_size=16, warmup_steps=1, log_every=2, checkpoint_every=2)
    fit(make_net(), mse, TensorData(x=x, y=y), cfg, out_dir=tmp_path / "run")
    steps = []
    with pytest.raises(FileExistsError, match="pass resume=True"):
        fit(make_net(), mse, TensorData(x=x, y=y), cfg, out_dir=tmp_path / "run", callbacks=[lambda s, m, h: steps.append(s)])
    assert steps == [] and sorted(p.name for p in (tmp_path / "run").iterdir() if p.name.startswith("step")) == ["step_000002", "step_000004"]
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fit(make_net(), mse, TensorData(x=x, y=y), cfg, out_dir=tmp_path / "run")
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OSError):                                           # before any step, not at the first checkpoint
        fit(make_net(), mse, TensorData(x=x, y=y), cfg, out_dir=tmp_path / "file" / "run", callbacks=[lambda s, m, h: steps.append(s)])
    assert steps == []


def step_folders(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith("step_"))


def test_overwrite_deletes_the_old_runs_checkpoints_before_step_one(tmp_path):
    x, y = data(32)
    cfg = TrainConfig(steps=4, batch_size=16, warmup_steps=1, log_every=2, checkpoint_every=2)
    run = tmp_path / "run"
    fit(make_net(), mse, TensorData(x=x, y=y), cfg, out_dir=run)
    (run / "step_000009").mkdir(); (run / "step_000009" / "model.safetensors").write_bytes(b"half")  # half-deleted
    (run / "notes.txt").write_text("not a checkpoint")
    seen = []
    def first_step(step, model, history):
        seen.append(step_folders(run))
    fit(make_net(), mse, TensorData(x=x, y=y), TrainConfig(**{**cfg.to_dict(), "steps": 2, "log_every": 1}),
        out_dir=run, overwrite=True, callbacks=[first_step])
    assert seen[0] == []                                                   # gone before the new run's first step
    assert step_folders(run) == ["step_000002"] and (run / "notes.txt").exists()
    with pytest.raises(ValueError, match="pass one"):
        fit(make_net(), mse, TensorData(x=x, y=y), cfg, out_dir=run, resume=True, overwrite=True)
    assert step_folders(run) == ["step_000002"]


def writable(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder): return True
    except OSError: return False


def test_an_unwritable_out_dir_is_refused_before_step_one(tmp_path):
    "A folder that takes no file is refused before any step, even where its permission bits say yes (root, sysfs)."
    ro = tmp_path / "ro"; ro.mkdir(); ro.chmod(0o555)
    if writable(ro): ro = Path("/sys")                        # root ignores permission bits; sysfs takes no file
    if not ro.is_dir() or writable(ro): pytest.skip("no folder here refuses a new file")
    x, y, steps = *data(32), []
    with pytest.raises(PermissionError, match="cannot write checkpoints"):
        fit(make_net(), mse, TensorData(x=x, y=y), TrainConfig(steps=2, batch_size=16, warmup_steps=1, log_every=1),
            out_dir=ro, callbacks=[lambda s, m, h: steps.append(s)])
    assert steps == []


def test_a_kill_while_pruning_leaves_only_complete_checkpoints(tmp_path, monkeypatch):
    "Killed while deleting an old checkpoint: no half-deleted step folder is left, and the resumed run is the same run."
    x, y = data(64)
    cfg = TrainConfig(steps=20, batch_size=16, lr=1e-2, warmup_steps=2, log_every=5, checkpoint_every=5,
                      keep_checkpoints=1)
    whole = fit(make_net(), mse, TensorData(x=x, y=y), cfg)
    real_rmtree = shutil.rmtree
    def killed_midway(path, *args, **kwargs):
        path = Path(path)
        if "step_000010" in path.name and path.is_dir() and (path / "state.json").exists():
            (path / "model.safetensors").unlink()                       # part of the folder is gone, then the kill
            raise KeyboardInterrupt("killed while pruning")
        return real_rmtree(path, *args, **kwargs)
    monkeypatch.setattr(core.shutil, "rmtree", killed_midway)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        fit(make_net(), mse, TensorData(x=x, y=y), cfg, out_dir=run)
    monkeypatch.undo()
    assert step_folders(run) == ["step_000015"] and [p.name for p in list_checkpoints(run)] == ["step_000015"]
    (run / "step_000099").mkdir(); (run / "step_000099" / "model.safetensors").write_bytes(b"half")  # no state.json
    resumed = fit(make_net(), mse, TensorData(x=x, y=y), cfg, out_dir=run, resume=True)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]


def test_resume_between_log_steps_keeps_the_log_window(tmp_path):
    "Killed after a checkpoint that is not a log step, the resumed run logs the same losses as an uninterrupted one."
    x, y = data(64)
    cfg = TrainConfig(steps=30, batch_size=16, lr=1e-2, warmup_steps=2, log_every=10, checkpoint_every=5)
    whole = fit(make_net(), mse, TensorData(x=x, y=y), cfg, out_dir=tmp_path / "whole")
    calls = []
    def dies_in_step_17(model, batch):
        calls.append(1)
        if len(calls) == 17: raise KeyboardInterrupt("killed")
        return mse(model, batch)
    with pytest.raises(KeyboardInterrupt):
        fit(make_net(), dies_in_step_17, TensorData(x=x, y=y), cfg, out_dir=tmp_path / "killed")
    resumed = fit(make_net(), mse, TensorData(x=x, y=y), cfg, out_dir=tmp_path / "killed", resume=True)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]


def test_train_diffusion_runs_with_its_default_preset(tmp_path, capsys):
    "The CLI's default preset exists: `ld4lg train-diffusion --latents F --out D` with only sizes shrunk for a CPU."
    from ld4lg_edu.cli import main
    from ld4lg_edu.diffusion import LatentDataset
    torch.manual_seed(0)
    LatentDataset(torch.randn(32, 32, 64), torch.randint(0, 3, (32,))).save(tmp_path / "lat.safetensors")
    main(["train-diffusion", "--latents", str(tmp_path / "lat.safetensors"), "--steps", "2", "--batch-size", "16",
          "--width", "32", "--heads", "2", "--out", str(tmp_path / "run")])
    assert "trained 2 steps" in capsys.readouterr().out and (tmp_path / "run" / "ema_denoiser" / "denoiser.json").exists()


def test_train_diffusion_refuses_a_finished_run_unless_told_overwrite(tmp_path, capsys):
    "`ld4lg train-diffusion` twice into one folder: one line naming --overwrite, nothing written; with it, a new run."
    from ld4lg_edu.cli import main
    from ld4lg_edu.diffusion import LatentDataset
    torch.manual_seed(0)
    LatentDataset(torch.randn(32, 32, 64), torch.randint(0, 3, (32,))).save(tmp_path / "lat.safetensors")
    argv = ["train-diffusion", "--latents", str(tmp_path / "lat.safetensors"), "--batch-size", "16", "--width", "32",
            "--heads", "2", "--out", str(tmp_path / "run")]
    main([*argv, "--steps", "3"])
    before = step_folders(tmp_path / "run")
    with pytest.raises(SystemExit) as exit:
        main([*argv, "--steps", "2"])
    assert exit.value.code == 2 and "--overwrite" in capsys.readouterr().err and step_folders(tmp_path / "run") == before
    main([*argv, "--steps", "2", "--overwrite"])
    assert step_folders(tmp_path / "run") == ["step_000002"]


@pytest.mark.parametrize("command, module, function", [
    ("train-lm", "lm", "pretrain_course_lm"), ("train-ae", "ae_training", "train_autoencoder"),
    ("train-diffusion", "diffusion", "train_diffusion"), ("train-ar", "baseline", "train_ar_baseline")])
def test_every_train_command_passes_overwrite(command, module, function, monkeypatch, tmp_path):
    "Each `ld4lg train-*` command takes --overwrite and hands it to its training function (off unless given)."
    import importlib
    from ld4lg_edu import cli
    seen = []
    class Stop(Exception): pass
    def spy(*args, **kwargs):
        seen.append(kwargs.get("overwrite")); raise Stop
    monkeypatch.setattr(importlib.import_module(f"ld4lg_edu.{module}"), function, spy)
    monkeypatch.setattr(importlib.import_module("ld4lg_edu.lm"), "load_lm", lambda *a, **k: (None, None))
    monkeypatch.setattr(importlib.import_module("ld4lg_edu.autoencoder"), "LanguageAutoencoder", lambda *a: None)
    monkeypatch.setattr(importlib.import_module("ld4lg_edu.diffusion").LatentDataset, "load",
                        lambda path: importlib.import_module("ld4lg_edu.diffusion").LatentDataset(torch.zeros(2, 4, 8)))
    extra = ["--latents", "x"] if command == "train-diffusion" else []
    for flag in ([], ["--overwrite"]):
        with pytest.raises(Stop):
            cli.main([command, *extra, "--out", str(tmp_path / "run"), *flag])
    assert seen == [False, True]


def test_resume_refuses_a_checkpoint_of_another_recipe(tmp_path):
    "A checkpoint written for another recipe (`config_to_save`) is refused by name before any step; nothing is written."
    x, y = data(32)
    cfg = TrainConfig(steps=4, batch_size=16, warmup_steps=1, log_every=2, checkpoint_every=2)
    fit(make_net(), mse, TensorData(x=x, y=y), cfg, out_dir=tmp_path / "run", config_to_save={"width": 16, "lr": 1})
    steps = []
    with pytest.raises(ValueError, match=r"different config \(keys \['width'\]\)"):
        fit(make_net(), mse, TensorData(x=x, y=y), TrainConfig(**{**cfg.to_dict(), "steps": 8}), out_dir=tmp_path / "run",
            resume=True, config_to_save={"width": 32, "lr": 1}, callbacks=[lambda s, m, h: steps.append(s)])
    assert steps == [] and step_folders(tmp_path / "run") == ["step_000002", "step_000004"]


def test_the_recipe_is_importable_from_training_as_the_same_objects():
    "Chapter 01's recipe is re-exported by the training module: one definition, two import paths."
    from ld4lg_edu import train_recipe, training
    for name in ("COMPILE_MODES", "TrainConfig", "lr_multiplier", "trainable_state", "EMA", "EpochSampler", "TensorData"):
        assert getattr(training, name) is getattr(train_recipe, name), name
        assert name in train_recipe.__all__ and name not in training.__all__, name
