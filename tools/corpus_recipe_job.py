"""The shipped recipe on another corpus (issue: AG News with the new recipe), stage `ae`: the shipped autoencoder's
compression and reconstruction networks fine-tuned on the corpus's train split, with room for longer texts
(`MAX_LEN` tokens: the Perceiver's input positions beyond the shipped 64 start as copies of the last one) and, with
TRAIN_DECODER=1, the LM's decoder trained too. RESUME=1 continues a run that a call's time limit cut short (the same
RUNS_DIR, on a machine still warm); COMPILE=0 trains uncompiled (default: compiled on a GPU). Held-out reconstruction
of test texts before and after goes to $OUT/recipe_ae_<corpus>.json (scored on a CPU by tools/recipe_ae_rows.py;
texts only here).

    python3 tools/corpus_recipe_job.py ag_news-local RUNS_DIR
"""
import dataclasses, json, os, sys, time
from pathlib import Path

import torch

from ld4lg_edu.ae_training import train_autoencoder
from ld4lg_edu.autoencoder import LanguageAutoencoder, as_autoencoder
from ld4lg_edu.data import load_corpus

env = lambda name, default: type(default)(os.environ.get(name, default))
corpus, runs = sys.argv[1], Path(sys.argv[2])
out, device, t0 = Path(os.environ.get("OUT", "/tmp/out")), os.environ.get("DEVICE", "cuda"), time.time()
data = load_corpus(corpus)
held_out = data.texts("test")[:env("N_RECON", 300)]
shipped = as_autoencoder("default", device)
before = shipped.reconstruct(held_out)
config = dataclasses.replace(shipped.config, max_length=env("MAX_LEN", 96), train_decoder=bool(env("TRAIN_DECODER", 0)))
ae = LanguageAutoencoder(shipped.lm, shipped.tokenizer, config).to(device)
state = {f"{n}.{k}": v for n in ("compression", "reconstruction") for k, v in getattr(shipped, n).state_dict().items()}
old = state["compression.positions"]  # (64, dim) -> (MAX_LEN, dim)
state["compression.positions"] = torch.cat([old, old[-1:].expand(config.max_length - len(old), -1)])
missing = ae.load_state_dict(state, strict=False)
assert not missing.unexpected_keys and all(k.startswith("lm.") for k in missing.missing_keys), missing
ae, result = train_autoencoder(ae, data.texts("train"), out_dir=runs / corpus / "ae", steps=env("AE_STEPS", 2000),
                               batch_size=env("AE_BATCH", 256), lr=env("AE_LR", 1e-4), warmup_steps=100,
                               num_samples=0, device=device, resume=bool(env("RESUME", 0)),
                               compile=bool(env("COMPILE", int(device == "cuda"))))
ae.eval()
(out / f"recipe_ae_{corpus}.json").write_text(json.dumps(
    {"corpus": corpus, "texts": held_out, "before": before, "after": ae.reconstruct(held_out),
     "config": dataclasses.asdict(config), "steps": result.step, "history": result.history,
     "train_texts": len(data.texts("train")), "seconds": time.time() - t0}))
print(f"autoencoder fine-tuned {result.step} steps on {corpus} in {time.time() - t0:.0f} s")
