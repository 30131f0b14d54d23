"""Does keeping x̂0 on the latent sphere help? The shipped autoencoder normalises every latent vector to length √d_ae,
so real latents lie on a product of spheres, while the denoiser's x̂0 (a posterior mean) falls inside them. This samples
the shipped model on a CPU with DPM-Solver++(2M) as shipped and with x̂0 projected back onto the spheres at every step
(x̂0_j ← √d_ae · x̂0_j / ‖x̂0_j‖, a thresholding in the spirit of Imagen's), from the same noise, and writes each as a
samples file for tools/evaluate_samples.py. --noise-scale τ starts either from τ·z_1 instead (a noise temperature).

    python tools/sphere_x0.py --per-class 200 --seeds 0 1 --out-dir /tmp/sphere
    python tools/evaluate_samples.py --samples /tmp/sphere/plain.json --steps 15 --per-class 100 200 \
        --validity-corpus wordnet-glosses --out /tmp/sphere/plain_eval.json      # and the same for sphere.json
    python tools/sphere_x0.py --combine /tmp/sphere   # -> nbs/results/sphere_x0_eval.json
"""
import argparse, json, math, time
from pathlib import Path

import torch

from ld4lg_edu.core import atomic_file
from ld4lg_edu.pipeline import load_default
from ld4lg_edu.samplers import DPMSolverPP2MSampler, StepOutput, sample_latents
from ld4lg_edu.schedule import v_from_x0, x0_from_v


class SphereDPMSolver(DPMSolverPP2MSampler):
    "DPM-Solver++(2M) whose x̂0 is put back on the spheres ‖x_j‖ = √d_ae of a normalising autoencoder at every step."
    name = "dpmpp2m-sphere"

    def step(self, v_pred, index, noisy, generator=None) -> StepOutput:
        "The solver's own step, given the v̂ whose x̂0 is the model's x̂0 projected onto the spheres."
        self._check_step(v_pred, index, noisy)
        alpha_t = self.alphas[index].item()
        x0_pred = x0_from_v(noisy, v_pred, alpha_t)                                               # (B, ℓ, d)
        x0_pred = x0_pred / x0_pred.norm(dim=-1, keepdim=True).clamp_min(1e-6) * math.sqrt(x0_pred.shape[-1])
        return super().step(v_from_x0(noisy, x0_pred, alpha_t), index, noisy, generator)


def combine(folder: Path, out: Path = Path("nbs/results/sphere_x0_eval.json")):
    "The scored runs in `folder` (plain_eval.json, sphere_eval.json, any plain-tau*_eval.json) as one results file."
    keep = ("seed", "num_texts", "per_class", "mauve", "lexical_validity", "class_accuracy", "memorization",
            "diversity")
    scored = {f.name.removesuffix("_eval.json"): json.loads(f.read_text())["rows"]
              for f in sorted(folder.glob("*_eval.json"))}
    table = {"description": RESULTS_ABOUT,
             "variants": {v: [{k: r[k] for k in keep} for r in rows if r["model"] == "ld4lg"]
                          for v, rows in scored.items()},
             "reference": [{k: r[k] for k in keep[:4]} for r in scored["plain"] if r["model"] == "reference"]}
    with atomic_file(out) as tmp: Path(tmp).write_text(json.dumps(table, indent=1))


RESULTS_ABOUT = ("The shipped model sampled on a CPU (tools/sphere_x0.py): DPM-Solver++(2M), 15 steps, w = 1, "
                 "200 texts per class, seeds 0 and 1, as shipped ('plain') and with x̂0 put back on the autoencoder's "
                 "latent spheres (‖x_j‖ = √d_ae) at every step ('sphere'), from the same noise, and as shipped from "
                 "1.1·z_1 ('plain-tau1.1', a noise temperature); scored by "
                 "tools/evaluate_samples.py at 100 and 200 texts per class (MAUVE on MiniLM features vs the test "
                 "split).")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-class", type=int, default=200); p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, default=15); p.add_argument("--w", type=float, default=1.0)
    p.add_argument("--noise-scale", type=float, default=1.0, help="start from τ·z_1 (τ > 1: more spread-out samples)")
    p.add_argument("--variants", nargs="+", default=["plain", "sphere"], choices=["plain", "sphere"])
    p.add_argument("--out-dir"); p.add_argument("--combine", metavar="FOLDER", help="write the results file instead")
    args = p.parse_args()
    if args.combine: return combine(Path(args.combine))
    if not args.out_dir: p.error("--out-dir is required (or --combine FOLDER)")
    pipe, out_dir = load_default(device="cpu"), Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n, names = args.per_class, pipe.label_names
    samplers = {"plain": DPMSolverPP2MSampler(pipe.schedule), "sphere": SphereDPMSolver(pipe.schedule)}
    for variant in args.variants:
        sampler = samplers[variant]
        runs, timing = {}, {}
        for seed in args.seeds:
            start, by_class = time.time(), {}
            for c, name in enumerate(names):
                seeded = torch.Generator().manual_seed(1000 * seed + c)  # the same z_1 for every variant
                z1 = torch.randn(n, pipe.num_latents, pipe.latent_dim, generator=seeded)
                noise = args.noise_scale * z1
                conditioning = pipe.conditioning(n, name, args.w)
                latents = sample_latents(pipe.denoiser, pipe.schedule, noise.shape, sampler=sampler, steps=args.steps,
                                         conditioning=conditioning, noise=noise, progress=False).latents
                by_class[name] = pipe.decode(latents.float())
            runs[f"w={args.w},seed={seed}"], timing[f"ld4lg,w={args.w},seed={seed}"] = by_class, time.time() - start
            print(variant, seed, f"{time.time() - start:.0f} s", by_class[names[0]][:2], flush=True)
        stem = variant if args.noise_scale == 1 else f"{variant}-tau{args.noise_scale:g}"
        with atomic_file(out_dir / f"{stem}.json") as tmp:
            Path(tmp).write_text(json.dumps({"ld4lg": runs, "timing": timing}))


if __name__ == "__main__":
    main()
