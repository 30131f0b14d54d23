"""Where the time of one `fit` step goes (issue: training at the speed of the GPU), on one CUDA device, one run:

1. a profile of the whole-step graph of the shipped denoiser at batch 256: GPU kernel time per step by kind of kernel;
2. `fit` it/s (bench/bench_training.py's part (c), whole-step graph) for variants that each remove or change one piece:
   dropout, self-conditioning. (Compile mode 'max-autotune-no-cudagraphs' spent minutes autotuning and did not
   finish inside a 9-minute call: not a choice for training runs of minutes.)

    python tools/fit_step_costs.py --out /tmp/out/fit_step_costs.txt
"""
import argparse, collections, contextlib, dataclasses, sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_training import ARCHS, fit_rate  # noqa: E402
from ld4lg_edu.denoiser import DenoiserConfig  # noqa: E402


def kernel_kind(name: str) -> str:
    "A coarse family for a CUDA kernel's name."
    n = name.lower()
    for kind, keys in (("matmul", ("gemm", "cutlass", "sm90", "xmma", "matmul", "mm_")), ("attention", ("flash", "fmha",
                       "attention", "sdpa")), ("optimizer", ("adam", "multi_tensor", "foreach")), ("triton (fused)",
                       ("triton",)), ("reduction", ("reduce", "norm")), ("copy", ("copy", "memcpy", "memset", "fill")),
                       ("random", ("philox", "rand", "bernoulli"))):
        if any(k in n for k in keys): return kind
    return "other elementwise"


def profile_graph_step(config, batch, steps=200):
    "Kernel time per step (µs) by kind, over the last `steps` replays of a whole-step-graph fit run."
    from torch.profiler import ProfilerActivity, profile
    prof = profile(activities=[ProfilerActivity.CUDA])
    calls = {"n": 0}

    def window(step, model, history):  # log_every=1: called after every step
        calls["n"] += 1
        if calls["n"] == 100: prof.__enter__()
        if calls["n"] == 100 + steps: torch.cuda.synchronize(); prof.__exit__(None, None, None)
    fit_rate(config, batch, torch.device("cuda"), True, 100 + steps + 5, cuda_graph=True, log_every=1,
             callbacks=[window])
    print(prof.key_averages().table(sort_by="device_time_total", row_limit=30), flush=True)
    by_kind, count, names = collections.Counter(), collections.Counter(), collections.Counter()
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            by_kind[kernel_kind(e.name)] += e.device_time / steps
            count[kernel_kind(e.name)] += 1 / steps
            names[e.name[:90]] += e.device_time / steps
    return by_kind, count, names


def graph_seconds(fn, replays=200) -> float:
    "Seconds per call of `fn()` captured as one CUDA graph (no launch overhead in the timing)."
    side = torch.cuda.Stream(); side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3): fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph): fn()
    graph.replay(); torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(replays): graph.replay()
    end.record(); torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / replays


def attention_backends(batch, heads, length, head_dim, dropout):
    "µs of one SDPA forward + backward at the denoiser's shape, per backend that runs it."
    from torch.nn.attention import SDPBackend, sdpa_kernel
    q, k, v = (torch.randn(batch, heads, length, head_dim, device="cuda", dtype=torch.bfloat16, requires_grad=True)
               for _ in range(3))
    grad = torch.randn_like(q)
    out = {}
    for backend in (SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                    SDPBackend.MATH):
        def step():
            with sdpa_kernel([backend]):
                torch.autograd.grad(F.scaled_dot_product_attention(q, k, v, dropout_p=dropout), (q, k, v), grad)
        try: out[backend.name] = 1e6 * graph_seconds(step)
        except Exception as e: out[backend.name] = f"fails: {str(e).splitlines()[0][:80]}"
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="shipped", choices=list(ARCHS))
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--fit-steps", type=int, default=400)
    p.add_argument("--out", default=None)
    p.add_argument("--parts", nargs="*", default=["profile", "variants"], choices=["profile", "variants", "levers"])
    args = p.parse_args()
    base = DenoiserConfig.preset("paper", num_classes=6, **ARCHS[args.arch])
    lines = [f"# {torch.cuda.get_device_name()}, torch {torch.__version__}; {args.arch} denoiser, "
             f"batch {args.batch_size}"]
    def say(line):  # each line reaches the file at once: a call cut short keeps what it measured
        lines.append(line); print(line, flush=True)
        if args.out: Path(args.out).write_text("\n".join(lines) + "\n")
    if "levers" in args.parts: return levers(args, base, say)
    try: by_kind, count, names = profile_graph_step(base, args.batch_size)
    except Exception as e: by_kind, count, names = {"(profile failed: " + repr(e)[:200] + ")": 1.0}, {}, {}
    by_kind, count, names = map(collections.Counter, (by_kind, count, names))
    total = sum(by_kind.values())
    say(f"whole-step graph: {total:.0f} µs of kernels per step ({1e6 / total:.0f} it/s if the GPU never waits), "
        f"{sum(count.values()):.0f} kernels per step")
    for kind, us in by_kind.most_common():
        say(f"  {kind:<18}{us:>8.0f} µs {100 * us / total:>5.1f}%  {count[kind]:>6.0f} kernels")
    say("top kernels (µs per step):")
    for name, us in names.most_common(12): say(f"  {us:>7.0f}  {name}")
    variants = {
        "as shipped (step graph, compile default)": base,
        "dropout 0": dataclasses.replace(base, dropout=0.0),
        "no self-conditioning": dataclasses.replace(base, self_condition=False),
    }
    say(f"fit it/s, whole-step graph, {args.fit_steps} steps each:")
    for name, config in variants.items():
        its = fit_rate(config, args.batch_size, torch.device("cuda"), True, args.fit_steps, cuda_graph=True)
        say(f"  {name:<44}{its:>8.1f} it/s  final loss {fit_rate.last_loss:.4f}")


def levers(args, base, say):
    """Two levers, measured: the attention backend at the denoiser's shape, and how the step graph clears gradients
    (fit sets them to None; the comparison run forces the earlier zeroing in place)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    for p in (base.dropout, 0.0):
        times = attention_backends(args.batch_size, base.heads, base.num_latents, base.width // base.heads, p)
        say(f"SDPA forward + backward, ({args.batch_size}, {base.heads}, {base.num_latents}, "
            f"{base.width // base.heads}), dropout {p}: " + ", ".join(
                f"{k.lower()} {v:.1f} µs" if isinstance(v, float) else f"{k.lower()} {v}" for k, v in times.items()))
    best = min((k for k, v in times.items() if isinstance(v, float)), key=times.get)
    zero_grad = torch.optim.Optimizer.zero_grad
    runs = {"as on main (gradients set to None)": ([], False),
            f"sdpa {best.lower()} only": ([getattr(SDPBackend, best)], False),
            "gradients zeroed in place": ([], True),
            f"sdpa {best.lower()}, zeroed in place": ([getattr(SDPBackend, best)], True)}
    for name, (backends, in_place) in runs.items():
        if in_place: torch.optim.Optimizer.zero_grad = lambda self, set_to_none=False: zero_grad(self, False)
        try:
            with sdpa_kernel(backends) if backends else contextlib.nullcontext():
                its = fit_rate(base, args.batch_size, torch.device("cuda"), True, args.fit_steps, cuda_graph=True)
        finally: torch.optim.Optimizer.zero_grad = zero_grad
        torch._dynamo.reset()
        say(f"  {name:<44}{its:>8.1f} it/s  final loss {fit_rate.last_loss:.4f}")


if __name__ == "__main__":
    main()
