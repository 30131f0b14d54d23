"""Tampered model folders: every loader refuses each fault with an error naming the file, and never runs a payload.

Five folder kinds (denoiser, autoencoder, AR baseline, pipeline, distilled student), tiny models. Each case copies a pristine folder,
breaks one thing and loads it. The kill tests run a save in a subprocess, kill it mid-way and load the folder again.
"""
import json, os, pickle, shutil, signal, subprocess, sys, textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import ROOT
from ld4lg_edu.autoencoder import AutoencoderConfig, LanguageAutoencoder, load_autoencoder, save_autoencoder
from ld4lg_edu.baseline import ARBaseline
from ld4lg_edu.data import load_tokenizer
from ld4lg_edu.denoiser import Denoiser, DenoiserConfig
from ld4lg_edu.diffusion import load_denoiser, save_denoiser
from ld4lg_edu.distill import DistilledStudent, load_student, save_student
from ld4lg_edu.lm import course_lm_config, frozen

NAMES = ["animal", "plant"]


class Payload:
    "Unpickling this creates `marker`: a loader that unpickles anything from a model folder is caught by its existence."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (open, (self.marker, "w"))


def tiny_lm(tok, seed=0):
    from transformers import BartForConditionalGeneration
    torch.manual_seed(seed)
    return frozen(BartForConditionalGeneration(course_lm_config("tiny", vocab_size=len(tok))))


def tiny_autoencoder(tok, seed=0):
    torch.manual_seed(seed)
    return LanguageAutoencoder(tiny_lm(tok, seed), tok, AutoencoderConfig.preset("tiny", lm="tiny-random")).eval()


def tiny_baseline(tok, seed=0):
    torch.manual_seed(seed)
    return ARBaseline.build({"n_layer": 1, "n_embd": 32, "n_head": 2, "n_positions": 32}, NAMES, tok)


def tiny_denoiser(seed=0):
    torch.manual_seed(seed)
    denoiser = Denoiser(DenoiserConfig.preset("tiny", num_classes=2))
    with torch.no_grad(): denoiser.output_proj.weight.normal_()          # not the zeros it starts from
    return denoiser.eval()


def tiny_model(kind, tok, seed):
    "A tiny model of a kind the kill tests save."
    return {"autoencoder": lambda: tiny_autoencoder(tok, seed), "baseline": lambda: tiny_baseline(tok, seed),
            "denoiser": lambda: tiny_denoiser(seed)}[kind]()


def save(kind, model, folder):
    "Save `model` (of `kind`) to `folder` the way the library does."
    if kind == "autoencoder": save_autoencoder(model, folder, save_lm=True)
    elif kind == "denoiser": save_denoiser(model, folder, max_shard_mb=0.3)   # several weight files
    else: model.save_pretrained(folder)


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, tok):
    "One saved folder of each kind, never modified (cases work on copies)."
    from ld4lg_edu.pipeline import tiny_pipeline
    root = tmp_path_factory.mktemp("pristine")
    torch.manual_seed(0)
    Denoiser(DenoiserConfig.preset("tiny", num_classes=2)).save_pretrained(root / "denoiser")
    tiny_autoencoder(tok).save_pretrained(root / "autoencoder", save_lm=True)
    tiny_baseline(tok).save_pretrained(root / "baseline")
    tiny_pipeline(NAMES).save_pretrained(root / "pipeline")
    save_student(tiny_student(), root / "student")
    return root


def test_save_pretrained_and_from_pretrained_round_trip(tmp_path, tok):
    "Each artifact's methods write a folder that its functions read back, and the other way round: one implementation."
    torch.manual_seed(0)
    den = Denoiser(DenoiserConfig.preset("tiny", num_classes=2)).eval()
    with torch.no_grad(): den.output_proj.weight.normal_()              # not the zeros it starts from
    den.save_pretrained(tmp_path / "d")
    loaded = load_denoiser(tmp_path / "d")
    assert all(torch.equal(a, b) for a, b in zip(den.state_dict().values(), loaded.state_dict().values()))
    save_denoiser(den, tmp_path / "d2")
    assert torch.equal(Denoiser.from_pretrained(tmp_path / "d2").output_proj.weight, den.output_proj.weight)
    ae = tiny_autoencoder(tok)
    ae.save_pretrained(tmp_path / "ae", save_lm=True)
    back = LanguageAutoencoder.from_pretrained(tmp_path / "ae")
    assert all(torch.equal(a, b) for a, b in zip(ae.state_dict().values(), back.state_dict().values()))
    assert torch.equal(load_autoencoder(tmp_path / "ae").encode(["a dog"]), ae.encode(["a dog"]))
    ar = tiny_baseline(tok)
    ar.save_pretrained(tmp_path / "ar")
    again = ARBaseline.from_pretrained(tmp_path / "ar")
    assert all(torch.equal(a, b) for a, b in zip(ar.model.state_dict().values(), again.model.state_dict().values()))


def tiny_student(seed=0):
    torch.manual_seed(seed)
    student = DistilledStudent(Denoiser(DenoiserConfig.preset("tiny", num_classes=2)), steps=4, guidance_range=(1.0, 3.0))
    with torch.no_grad(): student.guidance.mlp[-1].weight.normal_()     # not the zeros it starts from
    return student.eval()


def load(kind, path):
    from ld4lg_edu.pipeline import LatentDiffusionPipeline
    return {"denoiser": Denoiser.from_pretrained, "autoencoder": LanguageAutoencoder.from_pretrained,
            "baseline": ARBaseline.from_pretrained,
            "pipeline": LatentDiffusionPipeline.from_pretrained, "student": load_student}[kind](path)


# where each kind keeps its description and its weights (for the pipeline: those of its denoiser)
META = {"denoiser": "denoiser.json", "autoencoder": "autoencoder.json", "baseline": "ar_baseline.json",
        "pipeline": "pipeline.json", "student": "student.json"}
WEIGHTS = {"denoiser": "model.safetensors", "autoencoder": "autoencoder.safetensors", "baseline": "model.safetensors",
           "pipeline": "denoiser/model.safetensors", "student": "guidance.safetensors"}


def edit_json(path, change):
    d = json.loads(path.read_text()); change(d); path.write_text(json.dumps(d))


def put_pickle(path, marker):
    path.write_bytes(pickle.dumps(Payload(marker)))


def nan_weights(path):
    t = load_file(str(path)); k = next(k for k, v in t.items() if v.is_floating_point())
    t[k] = t[k].clone(); t[k].view(-1)[0] = float("nan"); save_file(t, str(path))


def wrong_shape(path):
    t = load_file(str(path)); k = next(k for k, v in t.items() if v.ndim == 2)
    t[k] = torch.zeros(t[k].shape[0] + 1, t[k].shape[1]); save_file(t, str(path))


def drop_tensor(path):
    t = load_file(str(path)); t.pop(sorted(t)[0]); save_file(t, str(path))


def link_out(path, tmp):
    outside = tmp / "outside" / path.name; outside.parent.mkdir(exist_ok=True)
    shutil.copyfile(path, outside); path.unlink(); path.symlink_to(outside)


# (case, how to break the folder, what the error must say); `f` is the folder, `m` the marker path, `t` a scratch folder
COMMON = {
    "truncated weights": (lambda k, f, m, t: (f / WEIGHTS[k]).write_bytes((f / WEIGHTS[k]).read_bytes()[:100]),
                          "is not a readable safetensors file"),
    "random bytes as weights": (lambda k, f, m, t: (f / WEIGHTS[k]).write_bytes(os.urandom(4096)),
                                "is not a readable safetensors file"),
    "pickle payload as weights": (lambda k, f, m, t: put_pickle(f / WEIGHTS[k], m), "is not a readable safetensors file"),
    "pickle file beside the weights": (lambda k, f, m, t: put_pickle((f / WEIGHTS[k]).parent / "pytorch_model.bin", m),
                                       "is a pickle file"),
    "NaN weight": (lambda k, f, m, t: nan_weights(f / WEIGHTS[k]), "NaN"),
    "weights missing": (lambda k, f, m, t: (f / WEIGHTS[k]).unlink(), "missing"),
    "weights linked from outside": (lambda k, f, m, t: link_out(f / WEIGHTS[k], t), "outside its folder"),
    "description linked from outside": (lambda k, f, m, t: link_out(f / META[k], t), "outside its folder"),
    "higher version": (lambda k, f, m, t: edit_json(f / META[k], lambda d: d.update(version=99)), "upgrade ld4lg-edu"),
    "foreign format": (lambda k, f, m, t: edit_json(f / META[k], lambda d: d.update(format="evil")), "'evil'"),
    "broken JSON": (lambda k, f, m, t: (f / META[k]).write_text('{"format": '), "not valid JSON"),
    "JSON list": (lambda k, f, m, t: (f / META[k]).write_text("[1, 2]"), "not an object"),
    "latin-1 byte in JSON": (lambda k, f, m, t: (f / META[k]).write_bytes((f / META[k]).read_bytes().replace(b'"', b'"\xe9', 1)),
                             "is not UTF-8"),
}
SPECIFIC = {
    "denoiser": {
        "wrong shapes": (lambda f, m, t: wrong_shape(f / "model.safetensors"), "do not fit its denoiser.json"),
        "a tensor dropped": (lambda f, m, t: drop_tensor(f / "model.safetensors"), "do not fit its denoiser.json"),
        "weights named with ..": (lambda f, m, t: edit_json(f / "denoiser.json", lambda d: d.update(weights=["../x.safetensors"])),
                                  "outside its folder"),
        "weights named absolutely": (lambda f, m, t: edit_json(f / "denoiser.json", lambda d: d.update(weights=["/etc/passwd"])),
                                     "outside its folder"),
        "weights named with a folder part": (lambda f, m, t: (
            (f / "sub").mkdir(), shutil.copy(f / "model.safetensors", f / "sub"),
            edit_json(f / "denoiser.json", lambda d: d.update(weights=["sub/model.safetensors"]))), "not a plain file name"),
        "weights not a list": (lambda f, m, t: edit_json(f / "denoiser.json", lambda d: d.update(weights="model.safetensors")),
                               "['weights'] must be list[str]"),
        "config field of the wrong type": (lambda f, m, t: edit_json(f / "denoiser.json", lambda d: d["config"].update(width="32")),
                                           "['config']['width'] must be int, got str"),
        "unknown config key": (lambda f, m, t: edit_json(f / "denoiser.json", lambda d: d["config"].update(widht=32)),
                               "unknown keys ['widht']"),
        "config lacking": (lambda f, m, t: edit_json(f / "denoiser.json", lambda d: d.pop("config")), "lacks 'config'"),
        "impossible config": (lambda f, m, t: edit_json(f / "denoiser.json", lambda d: d["config"].update(heads=3)),
                              "denoiser.json: width="),
    },
    "autoencoder": {
        "wrong shapes": (lambda f, m, t: wrong_shape(f / "autoencoder.safetensors"), "does not match its config"),
        "a tensor dropped": (lambda f, m, t: drop_tensor(f / "autoencoder.safetensors"), "does not match its config"),
        "lm folder linked from outside": (lambda f, m, t: (shutil.move(f / "lm", t / "lm"), (f / "lm").symlink_to(t / "lm")),
                                          "outside its folder"),
        "pickle LM weights": (lambda f, m, t: ([p.unlink() for p in (f / "lm").glob("*.safetensors*")],
                                               put_pickle(f / "lm" / "pytorch_model.bin", m)), "is a pickle file"),
        "LM weights truncated": (lambda f, m, t: [p.write_bytes(p.read_bytes()[:64]) for p in (f / "lm").glob("model*.safetensors")],
                                 "is not a readable safetensors file"),
        "LM config.json broken": (lambda f, m, t: (f / "lm" / "config.json").write_text("{"),
                                  "the LM saved with this autoencoder does not load"),
        "LM saved alongside but absent": (lambda f, m, t: shutil.rmtree(f / "lm"), "lm is not a folder"),
        "lm_saved_alongside not a bool": (lambda f, m, t: edit_json(f / "autoencoder.json", lambda d: d.update(lm_saved_alongside="../lm")),
                                          "['lm_saved_alongside'] must be bool"),
        "lm_dims lacking d_model": (lambda f, m, t: edit_json(f / "autoencoder.json", lambda d: d["lm_dims"].pop("d_model")),
                                    "['lm_dims'] lacks 'd_model'"),
        "config field of the wrong type": (lambda f, m, t: edit_json(f / "autoencoder.json", lambda d: d["config"].update(num_latents=4.5)),
                                           "['config']['num_latents'] must be int"),
        "impossible config": (lambda f, m, t: edit_json(f / "autoencoder.json", lambda d: d["config"].update(feature_mask=2.0)),
                              "autoencoder.json: feature_mask must lie in [0, 1)"),
    },
    "baseline": {
        "wrong shapes": (lambda f, m, t: wrong_shape(f / "model.safetensors"), "does not load"),
        "a tensor dropped": (lambda f, m, t: drop_tensor(f / "model.safetensors"), "missing_keys"),
        "shard named with ..": (lambda f, m, t: ((f / "model.safetensors.index.json").write_text(json.dumps(
                                    {"weight_map": {"lm_head.weight": "../../outside.safetensors"}}))), "outside its folder"),
        "label_names not a list": (lambda f, m, t: edit_json(f / "ar_baseline.json", lambda d: d.update(label_names="animal")),
                                   "['label_names'] must be list[str] | None"),
        "repeated label names": (lambda f, m, t: edit_json(f / "ar_baseline.json", lambda d: d.update(label_names=["a", "a"])),
                                 "repeat a name"),
        "label_names lacking": (lambda f, m, t: edit_json(f / "ar_baseline.json", lambda d: d.pop("label_names")),
                                "lacks 'label_names'"),
        "config.json of another size": (lambda f, m, t: edit_json(f / "config.json", lambda d: d.update(vocab_size=d["vocab_size"] + 1)),
                                        "does not load"),
        "tokenizer of another size": (lambda f, m, t: edit_json(f / "tokenizer.json", lambda d: d["added_tokens"].append(
                                          {**d["added_tokens"][-1], "id": 99999, "content": "<extra>"})), "tokens but the model"),
        "broken config.json": (lambda f, m, t: (f / "config.json").write_text("{"), "does not load"),
    },
    "pipeline": {
        "autoencoder weights truncated": (lambda f, m, t: (f / "autoencoder" / "autoencoder.safetensors").write_bytes(b"\0" * 10),
                                          "autoencoder.safetensors is not a readable safetensors file"),
        "autoencoder higher version": (lambda f, m, t: edit_json(f / "autoencoder" / "autoencoder.json", lambda d: d.update(version=9)),
                                       "upgrade ld4lg-edu"),
        "denoiser weights named with ..": (lambda f, m, t: edit_json(f / "denoiser" / "denoiser.json",
                                                                     lambda d: d.update(weights=["../autoencoder/autoencoder.safetensors"])),
                                           "outside its folder"),
        "pipeline.json lacking steps": (lambda f, m, t: edit_json(f / "pipeline.json", lambda d: d.pop("steps")), "steps"),
        "denoiser folder linked from outside": (lambda f, m, t: (shutil.move(f / "denoiser", t / "denoiser"),
                                                                 (f / "denoiser").symlink_to(t / "denoiser")),
                                                "outside its folder"),
    },
    "student": {
        "wrong shapes": (lambda f, m, t: wrong_shape(f / "guidance.safetensors"), "does not fit this student's guidance"),
        "a tensor dropped": (lambda f, m, t: drop_tensor(f / "guidance.safetensors"), "does not fit this student's"),
        "guidance named with ..": (lambda f, m, t: edit_json(f / "student.json", lambda d: d.update(
                                       guidance="../denoiser/model.safetensors")), "could lead outside its folder"),
        "guidance named absolutely": (lambda f, m, t: edit_json(f / "student.json", lambda d: d.update(guidance="/etc/passwd")),
                                      "could lead outside its folder"),
        "steps not an int": (lambda f, m, t: edit_json(f / "student.json", lambda d: d.update(steps=4.0)),
                             "['steps'] must be int, got float"),
        "zero steps": (lambda f, m, t: edit_json(f / "student.json", lambda d: d.update(steps=0)), "steps must be >= 1"),
        "guidance range reversed": (lambda f, m, t: edit_json(f / "student.json", lambda d: d.update(guidance_range=[3, 1])),
                                    "w_min <= w_max"),
        "guidance range of three": (lambda f, m, t: edit_json(f / "student.json", lambda d: d.update(guidance_range=[1, 2, 3])),
                                    "guidance_range [w_min, w_max]"),
        "guidance range NaN": (lambda f, m, t: edit_json(f / "student.json", lambda d: d.update(guidance_range=[1, float("nan")])),
                               "finite"),
        "guidance range as text": (lambda f, m, t: edit_json(f / "student.json", lambda d: d.update(guidance_range="1-3")),
                                   "['guidance_range'] must be list[float]"),
        "student.json lacking steps": (lambda f, m, t: edit_json(f / "student.json", lambda d: d.pop("steps")), "lacks 'steps'"),
        "student.json missing": (lambda f, m, t: (f / "student.json").unlink(), "not a distilled student"),
        "denoiser weights truncated": (lambda f, m, t: (f / "model.safetensors").write_bytes(b"\0" * 10),
                                       "model.safetensors is not a readable safetensors file"),
        "denoiser.json higher version": (lambda f, m, t: edit_json(f / "denoiser.json", lambda d: d.update(version=9)),
                                         "upgrade ld4lg-edu"),
    },
}
CASES = [(k, name, (lambda k, fn: lambda f, m, t: fn(k, f, m, t))(k, fn), msg)
         for k in META for name, (fn, msg) in COMMON.items()]
CASES += [(k, name, fn, msg) for k, cases in SPECIFIC.items() for name, (fn, msg) in cases.items()]
CASES = [pytest.param(*c, id=f"{c[0]}: {c[1]}") for c in CASES]


@pytest.mark.parametrize("kind,case,breaks,message", CASES)
def test_a_tampered_folder_is_refused_by_name(pristine, tmp_path, kind, case, breaks, message):
    folder, marker = tmp_path / kind, tmp_path / "PAYLOAD_RAN"
    shutil.copytree(pristine / kind, folder, symlinks=True)
    breaks(folder, marker, tmp_path)
    with pytest.raises((ValueError, FileNotFoundError)) as e:
        load(kind, folder)
    assert message in str(e.value), str(e.value)
    assert str(tmp_path) in str(e.value), f"the error does not name the file: {e.value}"
    assert not marker.exists(), "a pickle payload ran while loading"


@pytest.mark.parametrize("kind", list(META))
def test_the_pristine_folders_load(pristine, kind):
    load(kind, pristine / kind)


@pytest.mark.parametrize("change", [{"version": "2"}, {"steps": "25"}, {"label_names": "animal"}])
def test_pipeline_json_types(pristine, tmp_path, change):
    shutil.copytree(pristine / "pipeline", tmp_path / "p")
    edit_json(tmp_path / "p" / "pipeline.json", lambda d: d.update(change))
    with pytest.raises(ValueError, match="pipeline.json"):
        load("pipeline", tmp_path / "p")


def test_folders_written_before_format_tags_load(pristine, tmp_path):
    "Untagged descriptions (earlier releases) read as version 0; one tag without the other is refused."
    for kind in ("denoiser", "autoencoder", "baseline"):
        folder = tmp_path / kind
        shutil.copytree(pristine / kind, folder)
        edit_json(folder / META[kind], lambda d: (d.pop("format"), d.pop("version")))
        load(kind, folder)
        edit_json(folder / META[kind], lambda d: d.update(version=1))
        with pytest.raises(ValueError, match="format None version 1"):
            load(kind, folder)


# ---------------------------------------------------------------- kill tests: a save killed mid-way

CHILD = textwrap.dedent("""
    import sys, time, json
    sys.path.insert(0, {tests!r})
    import torch, ld4lg_edu.core as core
    from test_tamper import save, tiny_model
    from ld4lg_edu.data import load_tokenizer
    from ld4lg_edu.autoencoder import save_autoencoder
    kind, stage, folder = sys.argv[1:4]
    tok = load_tokenizer()
    def stall(*args, **kwargs):
        print("stalled", flush=True); time.sleep(120)
    if stage == "before-swap":  # every file written and flushed, the swap not yet done
        core._flush = stall
    model = tiny_model(kind, tok, seed=1)
    if stage == "mid-write" and kind == "baseline":  # the model written, the tokenizer not yet
        model.tokenizer.save_pretrained = stall
    elif stage == "mid-write":  # one weight file written, the rest and the json not yet
        import safetensors.torch
        real = safetensors.torch.save_file
        safetensors.torch.save_file = lambda *a, **k: (real(*a, **k), stall())
    save(kind, model, folder)
    print("finished", flush=True)
""")


def weights_of(kind, model):
    return model.model.state_dict() if kind == "baseline" else model.state_dict()


def kill_when_stalled(script, *args):
    "Run `script` with `args` in a child process and SIGKILL it once it prints 'stalled' (mid-save)."
    child = subprocess.Popen([sys.executable, str(script), *map(str, args)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        line = child.stdout.readline()
        assert line.strip() == "stalled", (line, child.stderr.read() if child.poll() is not None else "")
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill(); child.wait()


@pytest.mark.parametrize("kind,stage", [(k, s) for k in ("autoencoder", "baseline", "denoiser")
                                        for s in ("mid-write", "before-swap")])
def test_a_save_killed_midway_leaves_the_old_folder(tmp_path, tok, kind, stage):
    old = tiny_model(kind, tok, seed=0)
    folder = tmp_path / "model"
    save(kind, old, folder)
    (folder / "checkpoints").mkdir(); (folder / "checkpoints" / "state.json").write_text("{}")  # a run's checkpoints
    script = tmp_path / "child.py"; script.write_text(CHILD.format(tests=str(ROOT / "tests")))
    kill_when_stalled(script, kind, stage, folder)
    assert any(p.name.startswith(".model.tmp-") for p in tmp_path.iterdir())   # the killed save's half-made folder
    loaded = load(kind, folder)
    for (name, a), b in zip(weights_of(kind, old).items(), weights_of(kind, loaded).values()):
        assert torch.equal(a, b), name                                      # the old model, whole
    assert (folder / "checkpoints" / "state.json").exists()
    new = tiny_model(kind, tok, seed=2)
    save(kind, new, folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["child.py", "model"]  # the next save swept it away
    assert (folder / "checkpoints" / "state.json").exists()                    # and kept the run's checkpoints
    for (name, a), b in zip(weights_of(kind, new).items(), weights_of(kind, load(kind, folder)).values()):
        assert torch.equal(a, b), name


STUDENT_CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    import safetensors.torch
    from test_tamper import tiny_student
    from ld4lg_edu.distill import save_student
    real, calls = safetensors.torch.save_file, []
    def stall_at_the_guidance(*args, **kwargs):  # the denoiser written, the guidance weights too, student.json not yet
        real(*args, **kwargs); calls.append(1)
        if len(calls) == 2: print("stalled", flush=True); time.sleep(120)
    safetensors.torch.save_file = stall_at_the_guidance
    save_student(tiny_student(seed=1), sys.argv[1])
    print("finished", flush=True)
""")


def test_a_student_save_killed_midway_leaves_the_old_student(tmp_path):
    folder = tmp_path / "student"
    old = save_student(tiny_student(seed=0), folder) and load_student(folder)
    script = tmp_path / "child.py"; script.write_text(STUDENT_CHILD.format(tests=str(ROOT / "tests")))
    kill_when_stalled(script, folder)
    assert any(p.name.startswith(".student.tmp-") for p in tmp_path.iterdir())   # the killed save's half-made folder
    for (name, a), b in zip(old.state_dict().items(), load_student(folder).state_dict().values()):
        assert torch.equal(a, b), name                                            # the old student, whole
