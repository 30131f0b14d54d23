"""Sample a distilled student of the shipped model from τ·z_1 for several start temperatures τ (chapter 07a), on a
CPU, and write a samples file for tools/evaluate_samples.py (keys 'variant=NAME-tauτ,steps=N,w=..,seed=..'). The
noise of class c and seed s is the same draw for every τ (and for the teacher rows of tools/sphere_x0.py).

    python tools/student_temperature.py STUDENT_DIR --taus 1.2 1.3 --w 1 2.5 --seeds 0 1 --out /tmp/tau.json
    python tools/evaluate_samples.py --samples /tmp/tau.json --steps 4 --per-class 100 200 \
        --validity-corpus wordnet-glosses --out /tmp/tau_eval.json
"""
import argparse, json, time
from pathlib import Path

import torch

from ld4lg_edu.core import atomic_file
from ld4lg_edu.distill import check_noise_scale, load_student
from ld4lg_edu.pipeline import load_default
from ld4lg_edu.samplers import sample_latents


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("student", type=Path); p.add_argument("--taus", type=float, nargs="+", default=[1.0, 1.2])
    p.add_argument("--w", type=float, nargs="+", default=[1.0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--per-class", type=int, default=200); p.add_argument("--name", default="distilled")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    for tau in args.taus: check_noise_scale(tau)  # before the model is loaded
    pipe, student, n = load_default(device="cpu"), load_student(args.student), args.per_class
    out = {"ld4lg": {}, "timing": {}}
    for tau in args.taus:
        student.noise_scale = tau
        for w in args.w:
            for seed in args.seeds:
                start, by_class = time.time(), {}
                for c, name in enumerate(pipe.label_names):
                    z1 = torch.randn(n, pipe.num_latents, pipe.latent_dim,
                                     generator=torch.Generator().manual_seed(1000 * seed + c))
                    latents = sample_latents(student, pipe.schedule, z1.shape, sampler="distilled",
                                             steps=student.steps, conditioning=pipe.conditioning(n, name, w),
                                             noise=z1, progress=False).latents  # starts from τ·z_1
                    by_class[name] = pipe.decode(latents.float())
                key = f"variant={args.name}{student.steps}-tau{tau:g},steps={student.steps},w={w},seed={seed}"
                out["ld4lg"][key], out["timing"][key] = by_class, round(time.time() - start, 1)
                print(key, out["timing"][key], "s", by_class[pipe.label_names[0]][:2], flush=True)
                with atomic_file(args.out) as tmp: Path(tmp).write_text(json.dumps(out))  # what is done survives


if __name__ == "__main__":
    main()
