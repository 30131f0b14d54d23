"`ld4lg distill` on a tiny pipeline: students written and sampled through `ld4lg sample --sampler distilled`."
import json

import pytest
import torch

from ld4lg_edu.cli import main


def test_distill_command_writes_students_that_sample_sets(tmp_path, capsys):
    from ld4lg_edu.diffusion import LatentDataset
    from ld4lg_edu.pipeline import tiny_pipeline
    pipe = tiny_pipeline()
    pipe.save_pretrained(tmp_path / "teacher")
    latents = pipe.encode(["a small dog", "a tall tree", "a wild cat", "a green herb"] * 4)
    LatentDataset(latents, torch.tensor([0, 1] * 8)).save(tmp_path / "latents.safetensors")
    args = ["distill", "--model", str(tmp_path / "teacher"), "--latents", str(tmp_path / "latents.safetensors"),
            "--teacher-steps", "4", "--rounds", "2", "--steps-per-round", "2", "--batch-size", "8", "--keep", "1", "2",
            "--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit):   # a start temperature that is no temperature: refused before any work
        main(args + ["--noise-scale", "0"])
    assert "noise_scale must be a finite number > 0" in capsys.readouterr().err and not (tmp_path / "run").exists()
    main(args + ["--noise-scale", "1.25"])
    assert "students for [1, 2] steps" in capsys.readouterr().out
    from ld4lg_edu.pipeline import LatentDiffusionPipeline
    students = LatentDiffusionPipeline.from_pretrained(tmp_path / "run" / "pipeline").students
    assert {s: st.noise_scale for s, st in students.items()} == {1: 1.25, 2: 1.25}
    main(["sample", "--model", str(tmp_path / "run" / "pipeline"), "--label", "animal", "--n", "2", "--sampler", "distilled",
          "--steps", "2", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["sampler"] == "distilled" and out["steps"] == 2 and len(out["texts"]) == 2
    with pytest.raises(SystemExit):   # a step count without a student: one line, exit code, no traceback
        main(["sample", "--model", str(tmp_path / "run" / "pipeline"), "--label", "animal", "--sampler", "distilled",
              "--steps", "4"])
    assert "no student for steps=4" in capsys.readouterr().err


def test_overwrite_deletes_the_old_distillation_run_and_without_it_the_folder_is_refused(tmp_path, capsys):
    from ld4lg_edu.diffusion import LatentDataset
    from ld4lg_edu.pipeline import tiny_pipeline
    pipe = tiny_pipeline()
    pipe.save_pretrained(tmp_path / "teacher")
    latents = pipe.encode(["a small dog", "a tall tree", "a wild cat", "a green herb"] * 4)
    LatentDataset(latents, torch.tensor([0, 1] * 8)).save(tmp_path / "latents.safetensors")
    run = tmp_path / "run"
    def distill(rounds, *flags):
        main(["distill", "--model", str(tmp_path / "teacher"), "--latents", str(tmp_path / "latents.safetensors"),
              "--teacher-steps", "4", "--rounds", rounds, "--steps-per-round", "2", "--batch-size", "8",
              "--keep", "2", "--out", str(run), *flags])
    distill("2")                                                   # students for 4 (the guidance round), 2, 1 steps
    assert sorted(p.name for p in (run / "distill" / "students").iterdir()) == ["steps_1", "steps_2", "steps_4"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop: distill("1")           # refused as before
    assert stop.value.code == 2 and "--overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit): distill("1", "--overwrite", "--resume")
    assert "pass one" in capsys.readouterr().err
    assert (run / "distill" / "round_2").is_dir()                 # the refusals deleted nothing
    distill("1", "--overwrite")
    assert "students for [2] steps" in capsys.readouterr().out
    state = json.loads((run / "distill" / "distill.json").read_text())
    assert state["done"] == [4, 2] and {row["round"] for row in state["history"]} == {0, 1}
    assert sorted(p.name for p in (run / "distill").glob("round_*")) == ["round_0", "round_1"]   # the old round 2 gone
    assert sorted(p.name for p in (run / "distill" / "students").iterdir()) == ["steps_2", "steps_4"]
