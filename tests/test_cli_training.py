"What the training commands do with their run arguments: every one is handed on, none silently dropped."
import pytest

from ld4lg_edu.cli import train_overrides, build_parser


def test_train_diffusion_hands_on_the_seed_and_the_recipe_arguments():
    from ld4lg_edu.diffusion import DiffusionConfig
    args = build_parser().parse_args(["train-diffusion", "--latents", "x.safetensors", "--out", "run", "--seed", "7",
                                      "--steps", "12", "--lr", "0.002"])
    train = train_overrides(DiffusionConfig.preset("tiny").train, args)
    assert (train.seed, train.steps, train.lr) == (7, 12, 0.002)


class Stop(Exception):
    "Raised by a spy in place of the training function, once it has seen its call."


TRAINERS = {"train-lm": ("lm", "pretrain_course_lm", []), "train-ae": ("ae_training", "train_autoencoder", []),
            "train-diffusion": ("diffusion", "train_diffusion", ["--latents", "x"]),
            "train-seq2seq": ("seq2seq", "train_seq2seq", []), "train-segments": ("segments", "train_segments", [])}


def compile_call(command, flags, monkeypatch, tmp_path):
    "`ld4lg <command> --out DIR *flags` with its training function replaced by a spy: (compile, compile_mode) it got."
    import importlib
    import torch
    from ld4lg_edu import cli
    module, function, extra = TRAINERS[command]
    seen = []
    def spy(*args, **kwargs):
        if command == "train-diffusion":  # its recipe arrives as a DiffusionConfig, whose TrainConfig is read
            train = args[2].train
            seen.append((train.compile, train.compile_mode))
        else: seen.append((kwargs.get("compile"), kwargs.get("compile_mode")))
        raise Stop
    monkeypatch.setattr(importlib.import_module(f"ld4lg_edu.{module}"), function, spy)
    monkeypatch.setattr(importlib.import_module("ld4lg_edu.lm"), "load_lm", lambda *a, **k: (None, None))
    monkeypatch.setattr(importlib.import_module("ld4lg_edu.autoencoder"), "LanguageAutoencoder", lambda *a: None)
    diffusion = importlib.import_module("ld4lg_edu.diffusion")
    monkeypatch.setattr(diffusion.LatentDataset, "load", lambda path: diffusion.LatentDataset(torch.zeros(2, 4, 8)))
    with pytest.raises(Stop): cli.main([command, *extra, "--out", str(tmp_path / "run"), *flags])
    return seen[0]


def test_train_diffusion_hands_compile_mode_to_its_train_config(monkeypatch, tmp_path):
    for mode in ("default", "max-autotune-no-cudagraphs"):
        flags = ["--compile", "--compile-mode", mode]
        assert compile_call("train-diffusion", flags, monkeypatch, tmp_path) == (True, mode)
    assert compile_call("train-diffusion", [], monkeypatch, tmp_path) == (False, "reduce-overhead")


@pytest.mark.parametrize("command", sorted(set(TRAINERS) - {"train-diffusion"}))
def test_commands_whose_trainer_takes_no_compile_mode_do_not_offer_it(command, monkeypatch, tmp_path, capsys):
    "--compile reaches the training function; --compile-mode, which it has no way to use, is refused, not ignored."
    assert compile_call(command, ["--compile"], monkeypatch, tmp_path)[0] is True
    assert compile_call(command, [], monkeypatch, tmp_path)[0] is False
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args([command, *TRAINERS[command][2], "--out", "run", "--compile-mode", "default"])
    assert stop.value.code == 2 and "unrecognized arguments: --compile-mode" in capsys.readouterr().err


def test_compile_mode_is_offered_only_where_it_is_handed_on_and_with_the_modes_training_knows():
    from ld4lg_edu.cli_args import subcommands
    from ld4lg_edu.training import COMPILE_MODES
    offering = {name: a for name, c in subcommands().items() for a in c._actions if "--compile-mode" in a.option_strings}
    assert set(offering) == {"train-diffusion"}                      # the one command that hands it to TrainConfig
    assert tuple(offering["train-diffusion"].choices) == COMPILE_MODES


def test_train_diffusion_schedule_scale_reaches_the_recipe_and_a_bad_one_stops_before_the_latents(monkeypatch, tmp_path,
                                                                                                  capsys):
    import torch
    from ld4lg_edu import cli, diffusion
    seen = []
    def spy(data, denoiser_config, diffusion_config, **kwargs):
        seen.append(diffusion_config.schedule)
        raise Stop
    monkeypatch.setattr(diffusion, "train_diffusion", spy)
    monkeypatch.setattr(diffusion.LatentDataset, "load", lambda path: diffusion.LatentDataset(torch.zeros(2, 4, 8)))
    with pytest.raises(Stop):
        cli.main(["train-diffusion", "--latents", "x", "--out", str(tmp_path / "run"), "--schedule-scale", "0.5"])
    assert seen == [{"name": "cosine", "scale": 0.5}]
    with pytest.raises(Stop): cli.main(["train-diffusion", "--latents", "x", "--out", str(tmp_path / "run")])
    assert seen[1] == {"name": "cosine", "scale": 1.0}                     # the preset's when the flag is not given
    def no_read(path): raise AssertionError("the latents were read before the bad scale was refused")
    monkeypatch.setattr(diffusion.LatentDataset, "load", no_read)
    with pytest.raises(SystemExit):
        cli.main(["train-diffusion", "--latents", "x", "--out", str(tmp_path / "run"), "--schedule-scale", "-1"])
    assert "scale must be a positive finite number" in capsys.readouterr().err and len(seen) == 2


def test_train_diffusion_init_starts_from_a_saved_denoiser(tmp_path, capsys):
    "--init: the run starts from the saved weights (a vanishing lr keeps them); another shape is refused."
    import torch
    from ld4lg_edu import cli
    from ld4lg_edu.diffusion import LatentDataset, load_denoiser
    LatentDataset(torch.randn(16, 4, 8)).save(tmp_path / "x.safetensors")
    run = ["train-diffusion", "--preset", "tiny", "--latents", str(tmp_path / "x.safetensors"), "--steps", "3",
           "--batch-size", "8"]
    cli.main(run + ["--out", str(tmp_path / "a")])
    start = tmp_path / "a" / "ema_denoiser"
    cli.main(run + ["--out", str(tmp_path / "b"), "--init", str(start), "--lr", "1e-12"])
    a, b = load_denoiser(start), load_denoiser(tmp_path / "b" / "denoiser")
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(SystemExit) as stop:
        cli.main(run + ["--out", str(tmp_path / "c"), "--init", str(start), "--width", "48"])
    assert stop.value.code == 2 and "another shape (width: saved 64 vs expected 48)" in capsys.readouterr().err
