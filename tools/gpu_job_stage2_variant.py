"""One device call: the shipped stage-2 recipe (course denoiser, 60,000 steps of 256, whole-step CUDA graph) with one
change, on the shipped autoencoder's latents; then w = 1 and 2.5 samples at the default 10 DPM-Solver++(2M) steps (200
per class, seeds 0 and 1; --seeds and --sample-steps change them) to $OUT/samples_<name>.json and the built pipeline's
denoiser files to $OUT/<name>/, for tools/evaluate_samples.py and, if it wins, the shipped model. The samples' keys name
the variant at one step count, the steps (dpmpp2mN) at several.

    python tools/gpu_job_stage2_variant.py dropout0 --dropout 0
    python tools/gpu_job_stage2_variant.py scale05 --schedule-scale 0.5
    timeout 500 python tools/gpu_job_stage2_variant.py long --steps 120000 ...; then the same with --resume
    python tools/gpu_job_stage2_variant.py more --init ld4lg_edu/assets/default_model/denoiser --lr 1e-4 ...
"""
import argparse, json, os, shutil, subprocess, sys, time
from pathlib import Path

from ld4lg_edu.denoiser import DenoiserConfig
from ld4lg_edu.diffusion import DiffusionConfig, LatentDataset, train_diffusion

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("name")
p.add_argument("--dropout", type=float, default=None)
p.add_argument("--schedule-scale", type=float, default=None)
p.add_argument("--steps", type=int, default=60000)
p.add_argument("--resume", action="store_true", help="continue the run's checkpoints (a call cut short by timeout)")
p.add_argument("--init", default=None, help="a saved denoiser to start from (train_diffusion's init)")
p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the course preset's)")
p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="sampling seeds")
p.add_argument("--sample-steps", type=int, nargs="+", default=[10], help="DPM-Solver++(2M) step counts to sample at")
args = p.parse_args()
out, runs = Path(os.environ.get("OUT", "/tmp/out")), Path("/tmp/runs") / args.name
ae = "ld4lg_edu/assets/default_model/autoencoder"
cli = ["python3", "-m", "ld4lg_edu"]
latents = Path("/tmp/latents.safetensors")
if not latents.exists():
    subprocess.run(cli + ["encode", "--ae", ae, "--corpus", "wordnet", "--out", str(latents)], check=True)
data = LatentDataset.load(latents)
shape = dict(num_latents=data.num_latents, latent_dim=data.latent_dim, num_classes=data.num_classes)
if args.dropout is not None: shape["dropout"] = args.dropout
config = DiffusionConfig.preset("course")
if args.schedule_scale is not None: config.schedule = {**config.schedule, "scale": args.schedule_scale}
config.train.steps, config.train.compile, config.train.cuda_graph = args.steps, True, True
if args.lr is not None: config.train.lr = args.lr
start = time.time()
run = train_diffusion(data, DenoiserConfig.preset("course", **shape), config, out_dir=runs / "diffusion",
                      resume=args.resume, init=args.init)
print(f"{args.name}: trained {args.steps} steps in {time.time() - start:.0f} s; "
      f"final loss {run.history[-1]['loss']:.4f}", flush=True)
subprocess.run(cli + ["build", "--ae", ae, "--denoiser", str(runs / "diffusion" / "ema_denoiser"),
                      "--corpus", "wordnet", "--steps", "10", "--dtype", "bfloat16", "--out", str(runs / "pipeline")],
               check=True)
named = ["--variant", args.name] if len(args.sample_steps) == 1 else []
subprocess.run([sys.executable, "tools/gpu_job_steps.py", "--model", str(runs / "pipeline"),
                "--steps", *map(str, args.sample_steps), "--w", "1", "2.5", "--seeds", *map(str, args.seeds),
                "--out", f"samples_{args.name}.json", *named], check=True)
shutil.copytree(runs / "pipeline" / "denoiser", out / args.name)
(out / f"history_{args.name}.json").write_text(json.dumps(run.history[-20:]))
