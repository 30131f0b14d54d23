"""One fit rate in a fresh process: bench_training.fit_rate for the shipped denoiser (batch 256, compile + whole-step
CUDA graph, 1,200 steps), printing which training.py ran. Run it with PYTHONPATH pointing at two copies of the package
to compare them in one device call:  PYTHONPATH=OLD_COPY:. python tools/fit_split_check.py old"""
import sys, torch
from bench.bench_training import fit_rate, ARCHS
from ld4lg_edu.denoiser import DenoiserConfig
import ld4lg_edu.training as t
config = DenoiserConfig.preset("paper", num_classes=6, **ARCHS["shipped"])
its = fit_rate(config, 256, torch.device("cuda"), True, 1200, mode="default", cuda_graph=True)
print(sys.argv[1], t.__file__, "fit it/s", round(its, 1), "final loss", round(fit_rate.last_loss, 4), flush=True)
