"""The training loop on a CPU, this checkout against another one (e.g. an older commit in a git worktree), in one run:
it/s of `train_diffusion` for a small denoiser, each checkout in its own process, alternating, median of the repeats.

    git worktree add /tmp/base <commit> && python bench/bench_cpu_loop.py --other /tmp/base
"""
import argparse, json, os, statistics, subprocess, sys
from pathlib import Path

CHILD = r"""
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from ld4lg_edu.denoiser import DenoiserConfig
from ld4lg_edu.diffusion import DiffusionConfig, LatentDataset, train_diffusion
from ld4lg_edu.training import TrainConfig
stamps = []
def clock(step, model, history): stamps.append((step, time.perf_counter()))
torch.manual_seed(0)
data = LatentDataset(torch.randn(2048, 16, 32), torch.randint(0, 6, (2048,)))
config = DenoiserConfig(num_latents=16, latent_dim=32, width=128, depth=4, heads=4, num_classes=6)
train = TrainConfig(steps=120, batch_size=64, lr=1e-4, warmup_steps=10, log_every=20, checkpoint_every=10**9)
train_diffusion(data, config, DiffusionConfig(train=train), callbacks=[clock])
(s0, t0), (s1, t1) = stamps[0], stamps[-1]
print(json.dumps({"its": (s1 - s0) / (t1 - t0)}))
"""


def rate(tree: Path, threads: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree), "TQDM_DISABLE": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(threads)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["its"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--other", required=True, help="another checkout of the project to compare with")
    p.add_argument("--threads", type=int, default=2); p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    trees = {"this checkout": Path(__file__).resolve().parents[1], "other": Path(args.other).resolve()}
    runs = {name: [] for name in trees}
    for _ in range(args.repeats):
        for name, tree in trees.items(): runs[name].append(rate(tree, args.threads))
    this, other = (statistics.median(runs[n]) for n in trees)
    print(f"fit loop on the CPU ({args.threads} threads; denoiser 4 x 128, batch 64, self-conditioning, EMA), median of {args.repeats}")
    print(f"{'checkout':<16}{'it/s':>8}   runs")
    for name in trees: print(f"{name:<16}{statistics.median(runs[name]):>8.2f}   {[round(r, 2) for r in runs[name]]}")
    print(f"ratio this / other: {this / other:.2f}")


if __name__ == "__main__":
    main()
