"""Score chapter 09c's experiment on a CPU into nbs/results/segments_length.json and nbs/results/segments_eval.json.

Reads the folders unpacked from tools/gpu_job_segments.sh's segments_results.tgz (each may hold segments_curve_*.json,
segments_seg*.json, segments_single.json, segments_ppl.json and the logs) and the held-out reconstruction through
segment latents, which is computed here on a CPU with the shipped sentence autoencoder (`--reconstruct FILE` writes the
texts to FILE, or reads them from it when it exists: ~30 CPU-minutes for the 287 five-sentence test stories).

    python tools/segments_results.py --device-out run1 run2 --reconstruct /tmp/recon.json --out-dir nbs/results
"""
from __future__ import annotations
import argparse, json, re
from pathlib import Path


def write(path: Path, data):
    from ld4lg_edu.core import atomic_file
    with atomic_file(path) as tmp: tmp.write_text(json.dumps(data, indent=1))


def bleu(refs, hyps) -> dict:
    from ld4lg_edu.ae_training import reconstruction_metrics
    return {k: round(v, 2) for k, v in reconstruction_metrics(refs, hyps).items()} | {"texts": len(refs)}


def reconstruct_cpu(path: Path, corpus: str = "rocstories-local", sentences=(5, 5), limit: int | None = None) -> dict:
    """Held-out texts of `corpus` (its test split; those with `sentences` = (min, max) sentences, the first `limit`)
    through one latent per sentence of the shipped autoencoder; the texts are kept in `path` (read back when
    present)."""
    if path.exists(): return json.loads(path.read_text())
    from ld4lg_edu.data import load_corpus
    from ld4lg_edu.autoencoder import as_autoencoder
    from ld4lg_edu.segments import encode_segments, segment_texts, split_sentences
    low, high = sentences
    texts = [t for t in load_corpus(corpus).texts("test") if low <= len(split_sentences(t)) <= high][:limit]
    ae = as_autoencoder("default", "cpu")
    stories, _ = segment_texts(texts, high)
    latents, mask = encode_segments(ae, stories, high)
    flat, out, i = ae.decode(latents[mask], batch_size=128), [], 0
    for s in stories: out.append(" ".join(flat[i:i + len(s)])); i += len(s)
    data = {"corpus": corpus, "sentences": [len(s) for s in stories], "references": [" ".join(s) for s in stories],
            "hypotheses": out}
    write(path, data)
    return data


def curves(folders) -> dict:
    out = {}
    for folder in folders:
        for f in sorted(Path(folder).glob("segments_curve_*.json")):
            d = json.loads(f.read_text())
            out[d["autoencoder"]] = [{"sentences": int(k), "tokens": sum(r["tokens"]) / len(r["tokens"]),
                                      "truncated": sum(t > d["max_length"] for t in r["tokens"]) / len(r["tokens"]),
                                      **bleu(r["references"], r["hypotheses"])}
                                     for k, r in sorted(d["prefixes"].items())]
    return out


def training_runs(folders) -> dict:
    "Final loss, steps and wall time of each run, from the logs."
    runs = {}
    for folder in folders:
        for log in sorted(Path(folder).glob("*.log")):
            text = log.read_text(errors="replace").replace("\r", "\n")
            done = re.findall(r"trained (\d+) steps; final loss ([0-9.]+)", text)
            if done:
                runs[f"{Path(folder).name}/{log.stem}"] = {"steps": int(done[-1][0]), "final_loss": float(done[-1][1]),
                                                           "sampled": "wrote" in text}
    return runs


def mauve_rows(folders, ppl: dict) -> list[dict]:
    "MAUVE (MiniLM, vs the test split), diversity, memorisation and the AR perplexity of every sample set found."
    from ld4lg_edu.data import load_corpus
    from ld4lg_edu.metrics import evaluate_samples
    corpus = load_corpus("rocstories-local")
    rows = []
    for folder in folders:
        for f in sorted(Path(folder).glob("segments_*.json")):
            d = json.loads(f.read_text())
            if "samples" not in d or d.get("model") == "ar": continue
            if d.get("corpus", "rocstories-local") != "rocstories-local": continue
            for key, stories in d["samples"].items():
                texts = [" ".join(s) if isinstance(s, list) else s for s in stories]
                row = {"model": d["model"], "seed": int(key.split("=")[1]),
                       **evaluate_samples([t for t in texts if t.strip()], corpus.texts("train"), corpus.texts("test"),
                                          seed=25 + int(key.split("=")[1]))}
                row["ar_perplexity"] = ppl.get(d["model"], {}).get(key, {}).get("mean")
                if isinstance(stories[0], list): row["sentences_mean"] = sum(map(len, stories)) / len(stories)
                rows.append(row)
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device-out", nargs="+", required=True, help="folders unpacked from segments_results.tgz")
    p.add_argument("--reconstruct", default=None, help="JSON file of the CPU reconstruction (written when absent)")
    p.add_argument("--tiny-reconstruct", default=None,
                   help="the same for 100 TinyStories test paragraphs of 2-8 sentences")
    p.add_argument("--out-dir", default="nbs/results")
    args = p.parse_args()
    out = Path(args.out_dir)
    single = json.loads((out / "corpora_models.json").read_text())["reconstruction"]["rocstories-local"]
    stored = json.loads((out / "segments_eval.json").read_text()) if (out / "segments_eval.json").exists() else {}
    stored_length = json.loads((out / "segments_length.json").read_text()) if (out / "segments_length.json").exists() \
        else {}
    texts = reconstruct_cpu(Path(args.reconstruct)) if args.reconstruct else None
    # without --reconstruct the stored reconstruction scores (and curves of earlier calls) are kept
    rec = bleu(texts["references"], texts["hypotheses"]) if texts else stored.get("reconstruction", {}).get(
        "segments_shipped_ae")
    length = {"description": "Reconstruction BLEU of the first k sentences of the five-sentence stories of "
                             "rocstories-local's test split, each prefix through one latent (sacrebleu corpus BLEU)",
              "labels": {"sentence_ae": "one latent, shipped autoencoder (32 x 64, LM reads 64 tokens)",
                         "story_ae": "one latent, story autoencoder (32 x 64, 96 tokens)"},
              "curves": stored_length.get("curves", {}) | curves(args.device_out),
              "single_latent_story_bleu": single["bleu"],
              "segments_bleu": None if rec is None else rec["bleu"]}
    write(out / "segments_length.json", length)
    ppl = {}
    for folder in args.device_out:
        f = Path(folder) / "segments_ppl.json"
        if f.exists(): ppl[Path(folder).name] = json.loads(f.read_text())
    tiny_stored = stored.get("reconstruction", {}).get("segments_shipped_ae_tinystories")
    tiny = None if not args.tiny_reconstruct else reconstruct_cpu(Path(args.tiny_reconstruct), "tinystories-local",
                                                                   (2, 8), 100)
    evaluation = {"reconstruction": {"segments_shipped_ae": rec, "single_latent_rocstories_ae": single,
                                     "segments_shipped_ae_tinystories": tiny_stored if tiny is None else
                                     {**bleu(tiny["references"], tiny["hypotheses"]),
                                      "sentences_mean": sum(tiny["sentences"]) / len(tiny["sentences"])}},
                  "training_runs": stored.get("training_runs", {}) | training_runs(args.device_out),
                  "perplexity": stored.get("perplexity", {}) | ppl,
                  "samples": mauve_rows(args.device_out, next(iter(ppl.values()), {}))}
    if texts is None and "examples" in stored.get("reconstruction", {}):
        evaluation["reconstruction"]["examples"] = stored["reconstruction"]["examples"]
    if texts is not None:
        evaluation["reconstruction"]["examples"] = [{"story": r, "reconstruction": h} for r, h in
                                                    list(zip(texts["references"], texts["hypotheses"]))[:3]]
    write(out / "segments_eval.json", evaluation)
    print(json.dumps({k: v for k, v in evaluation.items() if k != "samples"}, indent=1)[:3000])


if __name__ == "__main__":
    main()
