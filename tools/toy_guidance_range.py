"""Chapter 07a's guided toy distillation (a class-conditional teacher on the 2-D Gaussian mixture, a guidance round and
halvings from a DDIM teacher down to 4 steps: 32 -> 4 by default) with the student's guidance range, round length and
first teacher's steps as arguments: the 4-step student's energy distance to the teacher's DDIM-256 samples at w = 1, 2,
3, beside the teacher's DPM-Solver++(2M) at 10 and 4 steps.
Two ways to draw the reference: from the same noise z_1 as the sampler ('same', the chapter's protocol: how close the
paths are) and from independent noise ('indep': how close the distributions are, with the estimator's noise floor).
Three draws of 3,000 points each. CPU, about a minute per run.

    python tools/toy_guidance_range.py --runs 1,3,600 0.5,4,600 0.5,4,2000 --out nbs/results/toy_guidance_range.json
"""
import argparse, json, time

import torch

from ld4lg_edu.core import atomic_file
from ld4lg_edu.denoiser import DenoiserConfig
from ld4lg_edu.diffusion import DiffusionConfig, train_diffusion
from ld4lg_edu.distill import DistillConfig, distill, energy_distance
from ld4lg_edu.samplers import sample_latents
from ld4lg_edu.schedule import CosineSchedule
from ld4lg_edu.toy import three_blobs
from ld4lg_edu.training import TrainConfig


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", nargs="+", default=["1,3,600", "0.5,4,600"], help="low,high,steps_per_round")
    p.add_argument("--teacher-steps", type=int, default=32, help="DDIM steps of the first teacher: 32, 64, ... (halved "
                   "down to 4)")
    p.add_argument("--out", default="nbs/results/toy_guidance_range.json")
    args = p.parse_args(argv)
    runs = [tuple(float(x) for x in r.split(",")) for r in args.runs]
    if any(len(r) != 3 or not r[0] < r[1] or r[2] < 1 for r in runs):
        raise ValueError(f"each run is low,high,steps_per_round with low < high, got {args.runs}")
    rounds = (args.teacher_steps // 4).bit_length() - 1  # halvings from teacher_steps down to 4
    if args.teacher_steps < 8 or args.teacher_steps != 4 * 2 ** rounds:
        raise ValueError(f"--teacher-steps must be 4 times a power of two, at least 8 (8, 16, 32, 64, ...), "
                         f"got {args.teacher_steps}")
    torch.set_num_threads(1)
    cosine = CosineSchedule()
    points, classes = three_blobs().sample(20_000, torch.Generator().manual_seed(0))
    data = {"latents": points[:, None], "labels": classes}
    config = DenoiserConfig.preset("tiny", num_latents=1, latent_dim=2, width=64, depth=2, heads=2,
                                   self_condition=False, num_classes=3)
    teacher = train_diffusion(data, config, DiffusionConfig.preset("tiny", train=dict(steps=400, batch_size=256)))
    teacher = teacher.ema_denoiser

    def draw(model, sampler, steps, w, seed):
        z1 = torch.randn(3000, 1, 2, generator=torch.Generator().manual_seed(seed))
        return sample_latents(model, cosine, z1.shape, sampler=sampler, steps=steps, noise=z1, class_labels=0,
                              guidance_scale=w, progress=False).latents[:, 0]
    results = []
    for low, high, steps in runs:
        start = time.time()
        recipe = TrainConfig(steps=int(steps), batch_size=256, lr=3e-3, weight_decay=0.0, warmup_steps=20,
                             decay="cosine", log_every=50)
        chain = DistillConfig(train=recipe, teacher_steps=args.teacher_steps, rounds=rounds, guidance_range=(low, high))
        run = distill(teacher, data, cosine, chain)
        samplers = {"student 4": (run.students[4], "distilled", 4), "teacher dpmpp2m 10": (teacher, "dpmpp2m", 10),
                    "teacher dpmpp2m 4": (teacher, "dpmpp2m", 4)}
        for w in (1.0, 2.0, 3.0):
            row = {"guidance_range": [low, high], "steps_per_round": int(steps), "teacher_steps": args.teacher_steps,
                   "w": w}
            for seed in (3, 4, 5):
                same, indep = draw(teacher, "ddim", 256, w, seed), draw(teacher, "ddim", 256, w, 100 + seed)
                for name, how in samplers.items():
                    x = draw(*how, w, seed)
                    row.setdefault(f"{name}, same", []).append(energy_distance(x, same))
                    row.setdefault(f"{name}, indep", []).append(energy_distance(x, indep))
            results.append(row)
            shown = {k: [round(x, 4) for x in v] for k, v in row.items() if k.endswith(("same", "indep"))}
            print(w, shown, flush=True)
        print(f"range ({low}, {high}), {int(steps)} steps a round: {time.time() - start:.0f} s", flush=True)
    out = {"description": __doc__.split("\n\n")[0].replace("\n", " "), "rows": results}
    with atomic_file(args.out) as tmp: tmp.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
