"""Denoiser training throughput: latent tokens per second and model-FLOP utilisation (MFU).

One timed step is the diffusion recipe of chapter 06 (sample t and ε, v-prediction loss, backward, gradient
clipping, AdamW step) on random latents. Model FLOPs per step are estimated as 6 · parameters · tokens
(forward 2, backward 4 per parameter per token), with tokens = batch · ℓ latent tokens; attention-score
FLOPs (small for ℓ = 32) are not counted. MFU = achieved model FLOP/s / `--peak-tflops`.
Self-conditioning is off by default (`--self-cond-prob 0`): its extra no-grad forward pass on half the steps
adds about 1/6 more work that the 6·N·T count does not include.

Examples:
    python bench/bench_denoiser.py                                    # CPU: tiny preset, fp32 vs bf16, < 1 min
    python bench/bench_denoiser.py --device cuda --presets tiny,paper --compile both --peak-tflops 989
"""
from __future__ import annotations
import argparse, platform, time

import torch

from ld4lg_edu.core import count_parameters, get_device
from ld4lg_edu.denoiser import Denoiser, DenoiserConfig
from ld4lg_edu.diffusion import DiffusionConfig, diffusion_loss
from ld4lg_edu.schedule import get_schedule

# Dense bf16 tensor-core peaks (TFLOP/s) used when --peak-tflops is not given; SXM parts, from vendor data sheets.
KNOWN_BF16_PEAKS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda', 'cuda:1', ...")
    p.add_argument("--presets", default=None, help="comma list of tiny,paper (default: tiny on CPU, tiny,paper on CUDA)")
    p.add_argument("--precisions", default="fp32,bf16", help="comma list of fp32,bf16 (bf16 = autocast, fp32 weights)")
    p.add_argument("--compile", default="auto", choices=["auto", "off", "on", "both"],
                   help="torch.compile the denoiser: auto = both on CUDA, off on CPU (CPU compilation alone takes ~1 min)")
    p.add_argument("--batch-size", type=int, default=None, help="default: 64 (tiny) / 128 (paper, the recipe's batch)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per row (default: 8 on CPU, 30 on CUDA)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation happens here)")
    p.add_argument("--self-cond-prob", type=float, default=0.0, help="self-conditioning probability in the timed steps")
    p.add_argument("--peak-tflops", type=float, default=None, help="accelerator peak for MFU; default: known bf16 peak on CUDA, else none")
    return p.parse_args(argv)


def default_peak(device: torch.device) -> float | None:
    if device.type != "cuda": return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in KNOWN_BF16_PEAKS.items() if k in name), None)


def sync(device: torch.device):
    if device.type == "cuda": torch.cuda.synchronize(device)


def bench_row(preset: str, precision: str, compiled: bool, batch_size: int, steps: int, warmup: int,
              device: torch.device, self_cond_prob: float) -> dict:
    "Time `steps` training steps of one configuration; returns the measured numbers."
    torch.manual_seed(0)
    cfg = DenoiserConfig.preset("paper") if preset == "paper" else DenoiserConfig.preset("tiny")
    model = Denoiser(cfg).to(device).train()
    params = count_parameters(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    net = torch.compile(model) if compiled else model
    schedule, recipe = get_schedule("cosine"), DiffusionConfig(self_cond_prob=self_cond_prob)
    latents = torch.randn(batch_size, cfg.num_latents, cfg.latent_dim, device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = diffusion_loss(net, latents, schedule, recipe)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); opt.zero_grad(set_to_none=True)

    for _ in range(warmup): step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps): step()
    sync(device)
    seconds = (time.perf_counter() - start) / steps
    tokens = batch_size * cfg.num_latents
    return {"params": params, "ms_per_step": 1e3 * seconds, "tokens_per_s": tokens / seconds,
            "tflops": 6 * params * tokens / seconds / 1e12}


def main(argv=None):
    args = parse_args(argv)
    device = get_device(args.device)
    on_cuda = device.type == "cuda"
    presets = (args.presets or ("tiny,paper" if on_cuda else "tiny")).split(",")
    precisions = args.precisions.split(",")
    compile_modes = {"auto": [False, True] if on_cuda else [False], "off": [False], "on": [True], "both": [False, True]}[args.compile]
    steps = args.steps or (30 if on_cuda else 8)
    peak = args.peak_tflops or default_peak(device)
    for name, allowed in (("preset", {"tiny", "paper"}), ("precision", {"fp32", "bf16"})):
        bad = set(presets if name == "preset" else precisions) - allowed
        if bad: raise SystemExit(f"unknown {name} {sorted(bad)}; choose from {sorted(allowed)}")

    gpu = torch.cuda.get_device_name(device) if on_cuda else platform.processor() or platform.machine()
    print(f"device {device} ({gpu}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"peak {peak if peak else 'n/a'} TFLOP/s, {steps} timed steps after {args.warmup} warm-up")
    header = f"{'preset':6s} {'params':>8s} {'batch':>5s} {'prec':>4s} {'compile':>7s} {'ms/step':>9s} {'tokens/s':>11s} {'TFLOP/s':>8s} {'MFU':>6s}"
    print(header); print("-" * len(header))
    for preset in presets:
        batch = args.batch_size or (128 if preset == "paper" else 64)
        for precision in precisions:
            for compiled in compile_modes:
                try:
                    r = bench_row(preset, precision, compiled, batch, steps, args.warmup, device, args.self_cond_prob)
                except Exception as e:  # e.g. no C++ compiler for torch.compile on CPU, or out of memory
                    print(f"{preset:6s} {'':>8s} {batch:5d} {precision:>4s} {str(compiled):>7s}  failed: {type(e).__name__}: {str(e)[:80]}")
                    continue
                mfu = f"{100 * r['tflops'] / peak:5.1f}%" if peak else "   n/a"
                print(f"{preset:6s} {r['params'] / 1e6:7.2f}M {batch:5d} {precision:>4s} {str(compiled):>7s} "
                      f"{r['ms_per_step']:9.1f} {r['tokens_per_s']:11.0f} {r['tflops']:8.3f} {mfu:>6s}")
                if on_cuda: torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
