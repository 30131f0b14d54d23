"""Progressive distillation (chapter 07a) and the distilled sampler in the pipeline (chapter 08)."""
import copy, json

import pytest
import torch

from ld4lg_edu.denoiser import Denoiser, DenoiserConfig
from ld4lg_edu.diffusion import save_denoiser
from ld4lg_edu.distill import (DistillConfig, DistilledStudent, distill, distillation_loss, distillation_target,
                               energy_distance, grid_alpha, load_student, save_student)
from ld4lg_edu.conditioning import Conditioning
from ld4lg_edu.samplers import DDIMSampler, guided_v, sample_latents
from ld4lg_edu.schedule import CosineSchedule
from ld4lg_edu.toy import GaussianMixture, MixtureDenoiser
from ld4lg_edu.training import TrainConfig

torch.set_num_threads(1)
COSINE = CosineSchedule()
MIX = GaussianMixture([0.3, 0.7], [[-1.0, 0.5], [1.0, -0.5]], [0.3, 0.2])


def tiny_teacher(num_classes=2, self_condition=True, seed=0):
    "A small random denoiser whose output is not zero (the output layer starts at zero)."
    torch.manual_seed(seed)
    net = Denoiser(DenoiserConfig.preset("tiny", num_latents=2, latent_dim=2, width=32, depth=2, heads=2, num_classes=num_classes,
                                       self_condition=self_condition))
    with torch.no_grad():
        for p in net.parameters(): p.add_(0.05 * torch.randn_like(p))
    return net.eval().requires_grad_(False)


def toy_latents(n=512, seed=0):
    x, labels = MIX.sample(n * 2, torch.Generator().manual_seed(seed))
    return {"latents": x.view(n, 2, 2), "labels": labels.view(n, 2)[:, 0]}


def fast_config(**overrides):
    train = dict(steps=20, batch_size=64, lr=1e-3, weight_decay=0.0, warmup_steps=2, decay="constant", log_every=5,
                 checkpoint_every=10)
    train.update(overrides.pop("train", {}))
    rest = {"teacher_steps": 8, "rounds": 2, "guidance_range": [1.0, 3.0], **overrides}
    return DistillConfig(train=TrainConfig(**train), **rest)


# ---------------------------------------------------------------- the student

def test_student_equals_teacher_at_init():
    teacher = tiny_teacher()
    student = DistilledStudent(copy.deepcopy(teacher), steps=4, guidance_range=(1, 3)).eval().requires_grad_(False)
    assert set(student.denoiser.state_dict()) == set(teacher.state_dict())  # the denoiser's weights keep their names
    z, alpha, labels = torch.randn(5, 2, 2), torch.rand(5), torch.tensor([0, 1, 2, 0, 1])
    sc = torch.randn(5, 2, 2)
    for w in (1.0, 2.0, torch.tensor([1.0, 1.5, 2.0, 2.5, 3.0])):
        assert torch.equal(student(z, alpha, self_cond=sc, class_labels=labels, guidance_scale=w),
                           teacher(z, alpha, self_cond=sc, class_labels=labels))
    plain = teacher(z, alpha, class_labels=labels)
    with torch.no_grad(): student.guidance.mlp[-1].bias.normal_()
    assert not torch.allclose(student(z, alpha, class_labels=labels, guidance_scale=2.0), plain)
    assert torch.equal(student.denoiser(z, alpha, class_labels=labels), plain)  # no w given: the hook adds nothing
    # a copy keeps its own hook: its w-embedding is its own
    twin = copy.deepcopy(student)
    with torch.no_grad(): twin.guidance.mlp[-1].bias.zero_()
    assert torch.equal(twin(z, alpha, class_labels=labels, guidance_scale=2.0), plain)
    assert not torch.allclose(student(z, alpha, class_labels=labels, guidance_scale=2.0), plain)


def test_target_is_two_guided_teacher_steps_in_one():
    "One DDIM step with ṽ lands where two classifier-free-guided DDIM steps of the teacher land, with one w per row."
    exact = MixtureDenoiser(MIX, class_conditional=True)
    N, B = 4, 6
    labels, w = torch.tensor([0, 1, 2, 0, 1, 2]), torch.linspace(1, 3, 6)
    student_grid, teacher_grid = DDIMSampler(COSINE).set_timesteps(N), DDIMSampler(COSINE).set_timesteps(2 * N)
    a = lambda grid, k: grid.alphas[[k] * B].float()
    for i in range(N):
        z = torch.randn(B, 3, 2, generator=torch.Generator().manual_seed(i))
        alphas = a(student_grid, i), a(teacher_grid, 2 * i + 1), a(student_grid, i + 1)
        v_tilde = distillation_target(exact, z, *alphas, labels, w)
        two = z
        for k in (2 * i, 2 * i + 1):
            v = guided_v(exact, two, a(teacher_grid, k), conditioning=Conditioning(labels, guidance_scale=w))
            two = teacher_grid.step(v, k, two).noisy
        torch.testing.assert_close(student_grid.step(v_tilde, i, z).noisy, two, atol=1e-4, rtol=0)
    assert torch.equal(grid_alpha(COSINE, torch.tensor([0.0])), torch.tensor([1.0]))


def test_one_round_lowers_the_loss():
    teacher, data = tiny_teacher(), toy_latents()
    config = fast_config(rounds=1, teacher_steps=4, guidance_round=False, train=dict(steps=60, lr=3e-3))
    def loss_of(student):
        torch.manual_seed(123)  # the same noise, times, w and coins for both
        with torch.no_grad():
            out = distillation_loss(student.eval(), teacher, data["latents"], COSINE, 2, config, data["labels"])
        return out["loss"].item()
    before = loss_of(DistilledStudent(copy.deepcopy(teacher), 2, config.guidance_range))
    run = distill(teacher, data, COSINE, config)
    after = loss_of(run.students[2])
    assert set(run.students) == {2} and before > 0
    assert after < 0.5 * before, (before, after)
    assert {row["steps"] for row in run.history} == {2}


def test_distill_checks_its_inputs():
    teacher = tiny_teacher()
    with pytest.raises(ValueError, match="divisible by 2"):
        DistillConfig(teacher_steps=12, rounds=3)
    with pytest.raises(ValueError, match="no labels"):
        distill(teacher, toy_latents()["latents"], COSINE, fast_config())
    with pytest.raises(ValueError, match="needs class labels"):
        distill(tiny_teacher(num_classes=0), toy_latents()["latents"], COSINE, fast_config())
    with pytest.raises(ValueError, match=r"expects \(N, 2, 2\)"):
        wrong = {"latents": torch.randn(64, 3, 2), "labels": torch.zeros(64, dtype=torch.long)}
        distill(teacher, wrong, COSINE, fast_config())
    with pytest.raises(TypeError, match="chapter-05 Denoiser"):
        distill(MixtureDenoiser(MIX), toy_latents(), COSINE, fast_config())


def test_energy_distance():
    x, _ = MIX.sample(2000, torch.Generator().manual_seed(0))
    y, _ = MIX.sample(3000, torch.Generator().manual_seed(1))
    assert abs(energy_distance(x, y)) < 5e-3 < energy_distance(x + 0.3, y)
    with pytest.raises(ValueError, match="same size"):
        energy_distance(x, y[:, :1])


# ---------------------------------------------------------------- sampling and saving

def test_distilled_sampler_step_validation(tmp_path):
    teacher = tiny_teacher()
    student = DistilledStudent(copy.deepcopy(teacher), steps=4)
    with pytest.raises(ValueError, match="needs a distilled student"):
        sample_latents(teacher, COSINE, (3, 2, 2), sampler="distilled", steps=4, progress=False)
    with pytest.raises(ValueError, match="distilled for 4 steps, not 8: pass steps=4"):
        sample_latents(student, COSINE, (3, 2, 2), sampler="distilled", steps=8, progress=False)
    out = sample_latents(student, COSINE, (3, 2, 2), sampler="distilled", steps=4, class_labels=1, guidance_scale=2.0,
                         generator=0, progress=False)
    assert out.latents.shape == (3, 2, 2) and torch.isfinite(out.latents).all()


def test_student_save_load_round_trip(tmp_path):
    student = DistilledStudent(tiny_teacher(), steps=2, guidance_range=(1, 3)).requires_grad_(False)
    with torch.no_grad(): student.guidance.mlp[-1].weight.normal_()
    save_student(student, tmp_path / "s", COSINE)
    loaded = load_student(tmp_path / "s").requires_grad_(False)
    z, alpha, labels = torch.randn(4, 2, 2), torch.rand(4), torch.tensor([0, 1, 2, 1])
    assert (loaded.steps, loaded.guidance_range) == (2, (1.0, 3.0))
    assert torch.equal(loaded(z, alpha, class_labels=labels, guidance_scale=2.5),
                       student(z, alpha, class_labels=labels, guidance_scale=2.5))
    save_denoiser(tiny_teacher(), tmp_path / "plain")
    with pytest.raises(ValueError, match="not a distilled student"):
        load_student(tmp_path / "plain")
    (tmp_path / "s" / "guidance.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="is missing; the student folder is incomplete"):
        load_student(tmp_path / "s")


def test_student_start_temperature(tmp_path):
    "A student's noise_scale τ: sampling starts from τ·z_1, it is saved and loaded, and bad values are refused."
    student = DistilledStudent(tiny_teacher(), steps=4, guidance_range=(1, 3), noise_scale=1.25).requires_grad_(False)
    z1 = torch.randn(3, 2, 2, generator=torch.Generator().manual_seed(0))
    run = lambda model, noise: sample_latents(model, COSINE, (3, 2, 2), sampler="distilled", steps=4, class_labels=1,
                                              guidance_scale=2.0, noise=noise, progress=False).latents
    plain = DistilledStudent(student.denoiser, steps=4, guidance_range=(1, 3))
    plain.guidance.load_state_dict(student.guidance.state_dict())
    assert torch.allclose(run(student, z1), run(plain, 1.25 * z1), atol=1e-6)
    assert not torch.allclose(run(student, z1), run(plain, z1), atol=1e-3)
    save_student(student, tmp_path / "s", COSINE)
    assert load_student(tmp_path / "s").noise_scale == 1.25
    meta = json.loads((tmp_path / "s" / "student.json").read_text())
    (tmp_path / "s" / "student.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "noise_scale"}))
    assert load_student(tmp_path / "s").noise_scale == 1.0  # a folder saved before τ existed starts from z_1
    (tmp_path / "s" / "student.json").write_text(json.dumps({**meta, "noise_scale": -1}))
    with pytest.raises(ValueError, match="noise_scale must be finite and > 0, got -1"):
        load_student(tmp_path / "s")
    for bad in (0, float("nan"), True, "1.2"):
        with pytest.raises(ValueError, match="noise_scale must be a finite number > 0"):
            DistilledStudent(tiny_teacher(), steps=4, noise_scale=bad)


# ---------------------------------------------------------------- resume

class Killed(Exception): pass


def test_resume_continues_a_killed_run_exactly(tmp_path):
    teacher, data, config = tiny_teacher(), toy_latents(256), fast_config()
    whole = distill(teacher, data, COSINE, config, out_dir=tmp_path / "whole")

    def kill(step, model, history):  # in round 1 (the 2-step student), after the checkpoint at step 10
        if model.steps == 2 and step == 15: raise Killed
    with pytest.raises(Killed):
        distill(teacher, data, COSINE, config, out_dir=tmp_path / "run", callbacks=[kill])
    state = json.loads((tmp_path / "run" / "distill.json").read_text())
    assert state["done"] == [8, 4] and (tmp_path / "run" / "students" / "steps_4").is_dir()  # guidance, 1st halving
    with pytest.raises(FileExistsError, match="resume=True"):
        distill(teacher, data, COSINE, config, out_dir=tmp_path / "run")
    with pytest.raises(ValueError, match="another config"):
        distill(teacher, data, COSINE, fast_config(guidance_range=[1.0, 2.0]), out_dir=tmp_path / "run", resume=True)
    resumed = distill(teacher, data, COSINE, config, out_dir=tmp_path / "run", resume=True)
    assert set(resumed.students) == {8, 4, 2}
    for steps in (8, 4, 2):
        resumed_state = resumed.students[steps].state_dict()
        for name, a in whole.students[steps].state_dict().items():
            b = resumed_state[name]
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=f"{steps}-step student, {name}")
    assert [r["loss"] for r in resumed.history] == pytest.approx([r["loss"] for r in whole.history], abs=1e-6)
    assert load_student(tmp_path / "run" / "students" / "steps_2").steps == 2


# ---------------------------------------------------------------- the pipeline

@pytest.fixture(scope="module")
def tiny_pipe():
    from ld4lg_edu.pipeline import tiny_pipeline
    return tiny_pipeline()


def tiny_corpus():
    from ld4lg_edu.data import Corpus
    texts = ["a small dog", "a tall tree", "a wild cat", "a green herb"] * 8
    rows = [{"text": t, "label": i % 2} for i, t in enumerate(texts)]
    return Corpus("toy", "class", {"train": rows, "valid": [], "test": []}, label_names=["animal", "plant"])


def test_pipeline_with_students_round_trip(tiny_pipe, tmp_path):
    from ld4lg_edu.pipeline import LatentDiffusionPipeline
    students = {s: DistilledStudent(copy.deepcopy(tiny_pipe.denoiser), s, (1, 3)) for s in (2, 4)}
    for st in students.values():
        with torch.no_grad(): st.guidance.mlp[-1].weight.normal_()  # so that w matters and a lost embedding would show
    pipe = LatentDiffusionPipeline(tiny_pipe.autoencoder, tiny_pipe.denoiser, tiny_pipe.schedule,
                                   label_names=tiny_pipe.label_names, steps=10, students=students)
    pipe.save_pretrained(tmp_path / "p")
    meta = json.loads((tmp_path / "p" / "pipeline.json").read_text())
    assert meta["students"] == [2, 4] and (tmp_path / "p" / "student" / "steps_4" / "guidance.safetensors").is_file()
    again = LatentDiffusionPipeline.from_pretrained(tmp_path / "p")
    assert sorted(again.students) == [2, 4]
    assert LatentDiffusionPipeline.from_pretrained(tmp_path / "p", students=False).students == {}  # left on disk
    fast = LatentDiffusionPipeline(tiny_pipe.autoencoder, tiny_pipe.denoiser, tiny_pipe.schedule, sampler="distilled",
                                   label_names=tiny_pipe.label_names, steps=4, students=students)
    fast.save_pretrained(tmp_path / "fast")  # a pipeline whose default sampler is a student's gets it anyway
    assert sorted(LatentDiffusionPipeline.from_pretrained(tmp_path / "fast", students=False).students) == [2, 4]
    kw = dict(label="plant", sampler="distilled", steps=4, guidance_scale=2.5, seed=3)
    assert torch.equal(again.sample(2, **kw).latents, pipe.sample(2, **kw).latents)
    assert not torch.equal(pipe.sample(2, **kw).latents, pipe.sample(2, **{**kw, "guidance_scale": 1.0}).latents)
    # a folder saved without students (as every folder before them) loads with none
    tiny_pipe.save_pretrained(tmp_path / "old")
    assert "students" not in json.loads((tmp_path / "old" / "pipeline.json").read_text())
    assert LatentDiffusionPipeline.from_pretrained(tmp_path / "old").students == {}
    (tmp_path / "p" / "student" / "steps_2" / "guidance.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="missing student/steps_2/guidance.safetensors"):
        LatentDiffusionPipeline.from_pretrained(tmp_path / "p")


def test_pipeline_distilled_sampler_errors(tiny_pipe):
    from ld4lg_edu.pipeline import LatentDiffusionPipeline
    with pytest.raises(ValueError, match="this pipeline has none"):
        tiny_pipe.sample(0, sampler="distilled", steps=4)
    pipe = LatentDiffusionPipeline(tiny_pipe.autoencoder, tiny_pipe.denoiser, tiny_pipe.schedule,
                                   label_names=tiny_pipe.label_names,
                                   students={4: DistilledStudent(copy.deepcopy(tiny_pipe.denoiser), 4)})
    with pytest.raises(ValueError, match=r"no student for steps=8; its students take steps in \[4\]"):
        pipe.sample(0, sampler="distilled", steps=8)
    with pytest.raises(ValueError, match="key it by 4"):
        LatentDiffusionPipeline(tiny_pipe.autoencoder, tiny_pipe.denoiser, label_names=tiny_pipe.label_names,
                                students={2: DistilledStudent(copy.deepcopy(tiny_pipe.denoiser), 4)})
    with pytest.raises(ValueError, match="needs a distilled student"):  # a 'distilled' default needs its student
        LatentDiffusionPipeline(tiny_pipe.autoencoder, tiny_pipe.denoiser, label_names=tiny_pipe.label_names,
                                sampler="distilled", steps=4)


def test_distill_pipeline_library_path_and_resume(tiny_pipe, tmp_path):
    "The path tools/distill_default.sh takes, on a tiny pipeline: encode, distil, save; a killed run resumes."
    from ld4lg_edu.pipeline import LatentDiffusionPipeline
    from ld4lg_edu.pipeline_students import distill_pipeline
    kw = dict(corpus=tiny_corpus(), rounds=2, teacher_steps=4, steps_per_round=4, batch_size=8, keep_steps=(1, 2))
    with pytest.raises(ValueError, match="among the students"):
        distill_pipeline(tiny_pipe, tmp_path / "bad", **{**kw, "keep_steps": (8,)})
    def kill(step, model, history):
        if model.steps == 1: raise Killed
    with pytest.raises(Killed):
        distill_pipeline(tiny_pipe, tmp_path / "run", callbacks=[kill], **kw)
    assert (tmp_path / "run" / "latents.safetensors").is_file() and not (tmp_path / "run" / "pipeline").exists()
    with pytest.raises(FileExistsError, match="resume=True"):
        distill_pipeline(tiny_pipe, tmp_path / "run", **kw)
    pipe = distill_pipeline(tiny_pipe, tmp_path / "run", resume=True, **kw)
    assert sorted(pipe.students) == [1, 2]
    loaded = LatentDiffusionPipeline.from_pretrained(tmp_path / "run" / "pipeline")
    out = loaded.sample(2, label="animal", sampler="distilled", steps=1, guidance_scale=2.0, seed=0)
    assert len(out.texts) == 2 and torch.isfinite(out.latents).all()
