"""The stages of the QQP seq2seq run (chapter 09b), one per call: `ae`, `ar`, `generate`; sizes from the environment.
Every stage trains on the train split of qqp-local only; texts it produces go to $OUT/seq2seq_<stage>.json, to be
scored on a CPU by tools/score_seq2seq.py (the GPU image may lack sacrebleu / rouge-score).
Usage: python3 tools/seq2seq_job.py ae|ar|generate RUNS_DIR"""
import json, os, sys, time
from pathlib import Path

import torch

from ld4lg_edu.ae_training import train_autoencoder
from ld4lg_edu.data import load_corpus
from ld4lg_edu.autoencoder import as_autoencoder
from ld4lg_edu.seq2seq import Seq2SeqPipeline, beam_generate, finetune_lm, seq2seq_pairs

env = lambda name, default: type(default)(os.environ.get(name, default))
stage, runs = sys.argv[1], Path(sys.argv[2])
out = Path(os.environ.get("OUT", "/tmp/out"))
qqp = load_corpus("qqp-local")
n_test, device = env("N_TEST", 1000), os.environ.get("DEVICE", "cuda")
valid_src, valid_ref = seq2seq_pairs(qqp, "valid", limit=env("N_VALID", 98))
test_src, test_ref = seq2seq_pairs(qqp, "test", limit=n_test)
write = lambda name, obj: (out / f"seq2seq_{name}.json").write_text(json.dumps(obj))
t0 = time.time()

if stage == "ae":  # fine-tune the shipped autoencoder's f_φ, g_ψ on the training questions (both sides of each pair)
    questions = [t for pair in zip(*seq2seq_pairs(qqp, "train")) for t in pair]
    held_out = test_ref[:env("N_RECON", 500)]
    before = as_autoencoder("default", device).reconstruct(held_out)
    ae, result = train_autoencoder(as_autoencoder("default", device), questions, out_dir=runs / "ae", steps=env("AE_STEPS", 1000),
                                   batch_size=env("AE_BATCH", 256), lr=env("AE_LR", 1e-4), warmup_steps=100, num_samples=0)
    ae.eval()
    write("ae", {"texts": held_out, "before": before, "after": ae.reconstruct(held_out), "train_questions": len(questions),
                 "steps": result.step, "history": result.history, "seconds": time.time() - t0})
elif stage == "ar":  # the course LM fine-tuned as an ordinary encoder-decoder on the same (doubled) pairs
    model, tok, history = finetune_lm(*seq2seq_pairs(qqp, "train", both_directions=True), steps=env("AR_STEPS", 1500),
                                      batch_size=env("AR_BATCH", 64), lr=env("AR_LR", 1e-4), device=device)
    t1 = time.time()
    write("ar", {"valid": beam_generate(model, tok, valid_src), "test": beam_generate(model, tok, test_src),
                 "history": history, "train_seconds": t1 - t0, "decode_seconds": time.time() - t1})
elif stage == "generate":  # k candidates per source at each w; MBR is done when scoring
    pipe = Seq2SeqPipeline.from_pretrained(runs / "s2s" / "pipeline", device=device)
    k, outputs = env("K", 5), {"valid": {}, "test": {}}
    for w in [float(x) for x in os.environ.get("WS", "1 2").split()]:
        for split, sources in (("valid", valid_src), ("test", test_src)):
            t1 = time.time()
            outputs[split][str(w)] = pipe.generate(sources, k=k, guidance_scale=w, mbr=False, seed=0, batch_size=128).candidates
            print(f"w={w} {split}: {len(sources)} sources x {k} in {time.time() - t1:.1f} s", flush=True)
            write("generate", {"k": k, "n_test": len(test_src), **outputs, "seconds": time.time() - t0})
else: raise SystemExit(f"unknown stage {stage!r}; use ae, ar or generate")
print(f"{stage}: done in {time.time() - t0:.0f} s", flush=True)
