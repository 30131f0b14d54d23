"""Training throughput, measured in one run, side by side:

(a) a plain-PyTorch reference step of the denoiser's shapes (pre-LN transformer, GeGLU, SDPA, fused AdamW), written here;
(b) the project's model step: `Denoiser` forward + backward + fused AdamW, no data, no self-conditioning;
(c) the full `fit` loop through `train_diffusion`: batches from a device `LatentDataset`, self-conditioning, label
    dropout, EMA, clipping, lr schedule;
for the shipped architecture (8 x 256) and the paper preset (12 x 768) at each batch size, eager and compiled; then
stage-1 rows: autoencoder training with and without cached encoder features, and course-LM pretraining tokens/s.
samples/s, MFU (FLOPs counted by torch's FlopCounterMode over one step) and ratios to (a) at the same batch and mode.

python bench/bench_training.py --device cuda --out nbs/results/bench_training_gpu.txt
python bench/bench_training.py --device cpu --archs shipped --batch-sizes 256 --compile off --stage1 off
"""
import argparse, math, sys, time
import torch
import torch.nn.functional as F
from torch import nn

from ld4lg_edu.core import trusted_inputs
from ld4lg_edu.denoiser import Denoiser, DenoiserConfig
from ld4lg_edu.diffusion import DiffusionConfig, LatentDataset, train_diffusion
from ld4lg_edu.training import TrainConfig

ARCHS = {"shipped": dict(width=256, depth=8, heads=4), "paper": dict(width=768, depth=12, heads=12)}
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0}


class RefBlock(nn.Module):
    "Pre-LN block: self-attention + GeGLU, the reference's only building block."
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.ff_in = nn.Linear(width, 8 * width)
        self.ff_out = nn.Linear(4 * width, width)

    def forward(self, x):
        B, L, W = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(B, L, 3, self.heads, W // self.heads).permute(2, 0, 3, 1, 4)  # 3 x (B, H, L, W/H)
        x = x + self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, L, W))
        value, gate = self.ff_in(self.norm2(x)).chunk(2, dim=-1)
        return x + self.ff_out(value * F.gelu(gate))


class Reference(nn.Module):
    "Latents (B, ℓ, d_ae) -> (B, ℓ, d_ae) through `depth` blocks of `width`."
    def __init__(self, latent_dim, width, depth, heads):
        super().__init__()
        self.inp = nn.Linear(latent_dim, width)
        self.blocks = nn.ModuleList(RefBlock(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, latent_dim)

    def forward(self, x):
        x = self.inp(x)
        for block in self.blocks: x = block(x)
        return self.out(self.norm(x))


def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()


def timed_steps(step, device, warmup, steps):
    "Seconds per call of `step()` (median of 3 timed groups after `warmup` calls)."
    for _ in range(warmup): step()
    sync(device)
    groups = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(steps): step()
        sync(device); groups.append((time.perf_counter() - t) / steps)
    return sorted(groups)[1]


def count_flops(step):
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter: step()
    return counter.get_total_flops()


def bare_step(model, batch, latent_dim, num_classes, device, compile_model, is_denoiser):
    "(a)/(b): one forward + backward + fused AdamW step on fixed random inputs."
    net = torch.compile(model) if compile_model else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda" or None)
    x = torch.randn(batch, 32, latent_dim, device=device)
    alpha, labels = torch.rand(batch, device=device), torch.randint(0, num_classes, (batch,), device=device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)

    def step():  # trusted inputs: the model's value checks would add a host sync that fit does not have
        with trusted_inputs(), amp:
            out = net(x, alpha, class_labels=labels) if is_denoiser else net(x)
            loss = F.mse_loss(out.float(), x)
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    return step


def timings_rate(timings):
    "it/s between the first and the last log step of a `fit` call (the first window holds warm-up and compilation)."
    (s0, t0), (s1, t1) = timings[0], timings[-1]
    return (s1 - s0) / (t1 - t0)


def fit_rate(config, batch, device, compile_model, steps, mode="default", cuda_graph=False, log_every=None, callbacks=()):
    "(c): it/s of `train_diffusion` between its first and last log step (the first window holds compilation)."
    stamps = []
    def clock(step, model, history): sync(device); stamps.append((step, time.perf_counter()))
    n = max(4 * batch, 8192)
    data = LatentDataset(torch.randn(n, 32, config.latent_dim), torch.randint(0, config.num_classes, (n,)))
    log_every = log_every or max(10, steps // 5)
    train = TrainConfig(steps=steps, batch_size=batch, lr=1e-4, warmup_steps=10, log_every=log_every,
                        checkpoint_every=10**9, compile=compile_model, compile_mode=mode, cuda_graph=cuda_graph)
    result = train_diffusion(data, config, DiffusionConfig(train=train), callbacks=[clock, *callbacks])
    fit_rate.last_loss = result.history[-1]["loss"]  # the graph rows must train as well as the eager ones
    return timings_rate(stamps)


def denoiser_rows(args, device, peak):
    rows = []
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    for arch in args.archs:
        config = DenoiserConfig.preset("paper", num_classes=6, **ARCHS[arch])
        for batch in args.batch_sizes:
            for compiled in modes:
                torch.manual_seed(0)
                ref = Reference(64, config.width, config.depth, config.heads).to(device)
                ref_step = bare_step(ref, batch, 64, 6, device, compiled, False)
                ref_s = timed_steps(ref_step, device, args.warmup, args.steps)
                model = Denoiser(config).to(device)
                model_step = bare_step(model, batch, 64, 6, device, compiled, True)
                model_s = timed_steps(model_step, device, args.warmup, args.steps)
                ref_flops, model_flops = count_flops(ref_step), count_flops(model_step)
                fit_its = fit_rate(config, batch, device, compiled, args.fit_steps)
                fit_flops = model_flops * (1 + 0.5 / 3)  # the self-conditioning forward on half the steps (~1/3 of a step each)
                tag = f"{arch:<8}{batch:>6}  {'compile' if compiled else 'eager':<8}"
                for name, sec, flops in (("(a) reference step", ref_s, ref_flops), ("(b) model step", model_s, model_flops),
                                         ("(c) fit loop", 1 / fit_its, fit_flops)):
                    mfu = flops / sec / 1e12 / peak if peak else float("nan")
                    rows.append(f"{tag}{name:<20}{1 / sec:>9.1f}{batch / sec:>12.0f}{100 * mfu:>7.1f}%{ref_s / sec:>8.2f}")
                print(*rows[-3:], sep="\n", flush=True)
            if device.type != "cuda": continue
            losses = {"compile": fit_rate.last_loss}
            for mode in args.modes:  # 'reduce-overhead': compile's CUDA graphs; 'step-graph': the whole step as one graph
                its = fit_rate(config, batch, device, True, args.fit_steps, mode="default" if mode == "step-graph" else mode,
                               cuda_graph=mode == "step-graph")
                losses[mode] = fit_rate.last_loss
                rows.append(f"{arch:<8}{batch:>6}  {mode[:9]:<8}{'(c) fit loop':<20}{its:>9.1f}{batch * its:>12.0f}{'':>8}{ref_s * its:>8.2f}")
                print(rows[-1], flush=True)
            print(f"{arch} {batch}: final loss by mode", {k: round(v, 4) for k, v in losses.items()}, flush=True)
    return rows


def stage1_table(args, device):
    "Autoencoder training (shipped LM, 32 x 64) from tokens vs from cached features; course-LM pretraining tokens/s."
    import tempfile
    from pathlib import Path
    from ld4lg_edu.ae_training import cache_features, train_autoencoder
    from ld4lg_edu.autoencoder import AutoencoderConfig, LanguageAutoencoder
    from ld4lg_edu.core import ASSETS
    from ld4lg_edu.data import load_corpus
    from ld4lg_edu.lm import load_lm, pretrain_course_lm
    lm_dir, tmp = ASSETS / "default_model" / "autoencoder" / "lm", Path(tempfile.mkdtemp())
    texts = load_corpus("wordnet-glosses").texts("train")[:args.stage1_texts]
    lm, tok = load_lm(lm_dir, device=device)
    tokens = sum(map(len, tok(texts[:2000])["input_ids"])) / len(texts[:2000])
    config = AutoencoderConfig.preset("course", lm=str(lm_dir), num_latents=32, latent_dim=64)
    t = time.perf_counter()
    cache = cache_features(LanguageAutoencoder(lm, tok, config).to(device), texts, tmp / "features.safetensors", batch_size=512)
    rows = [f"stage 1: {len(texts)} WordNet glosses, {tokens:.1f} tokens each; caching their features took {time.perf_counter() - t:.1f} s"]
    modes = [False, True] if device.type == "cuda" and args.compile != "off" else [False]
    kw = dict(steps=args.fit_steps, batch_size=256, warmup_steps=10, log_every=max(10, args.fit_steps // 5),
              checkpoint_every=10**9, sample_texts=[])
    for cached in (False, True):
        for compiled in modes:
            _, result = train_autoencoder(LanguageAutoencoder(lm, tok, config).to(device), texts,
                                          cache=cache if cached else None, compile=compiled, **kw)
            its = timings_rate(result.timings)
            what = "AE, cached features" if cached else "AE, from tokens"
            rows.append(f"{'course':<8}{256:>6}  {'cudagraph' if compiled else 'eager':<8}{what:<20}{its:>9.1f}{256 * its:>12.0f}")
            print(rows[-1], flush=True)
    for compiled in [False]:  # LM batches vary in length (text infilling): a compiled model would recompile
        result = pretrain_course_lm("course", out_dir=tmp / f"lm{int(compiled)}", corpus=texts, steps=args.fit_steps,
                                    batch_size=256, warmup_steps=10, log_every=max(10, args.fit_steps // 5),
                                    checkpoint_every=10**9, compile=compiled, eval_size=64)
        its = timings_rate(result.timings)
        rows.append(f"{'LM':<8}{256:>6}  {'compile' if compiled else 'eager':<8}{'LM pretraining':<20}{its:>9.1f}"
                    f"{256 * its:>12.0f}   ({256 * its * tokens:,.0f} tokens/s)")
        print(rows[-1], flush=True)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--archs", nargs="*", default=["shipped", "paper"], choices=list(ARCHS), help="denoiser rows (none: stage 1 only)")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[256, 1024])
    p.add_argument("--compile", default="both", choices=["off", "on", "both"])
    p.add_argument("--modes", nargs="*", default=["reduce-overhead", "step-graph"],
                   help="extra fit rows on CUDA: compile modes, or 'step-graph' (TrainConfig.cuda_graph)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per group for (a) and (b)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--fit-steps", type=int, default=300, help="steps of each fit run (c)")
    p.add_argument("--stage1", default="on", choices=["on", "off"])
    p.add_argument("--stage1-texts", type=int, default=20_000, help="WordNet glosses the stage-1 rows train on")
    p.add_argument("--out", default=None, help="also write the table to this file")
    args = p.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    peak = next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
    head = [f"device {device.type} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
            f"bf16 peak {peak} TFLOP/s" if peak else f"device {device.type} ({name}), torch {torch.__version__}, "
            f"threads {torch.get_num_threads()} (MFU not computed)",
            f"{'arch':<8}{'batch':>6}  {'mode':<8}{'what':<20}{'it/s':>9}{'samples/s':>12}{'MFU':>8}{'vs (a)':>8}"]
    print(*head, sep="\n", flush=True)
    rows = denoiser_rows(args, device, peak)
    if args.stage1 == "on": rows += stage1_table(args, device)
    text = "\n".join(head + ["-" * len(head[1])] + rows)
    print("\n" + text)
    if args.out:
        from pathlib import Path
        Path(args.out).write_text(text + "\n# " + " ".join(sys.argv) + "\n")


if __name__ == "__main__":
    main()
