"""A stand-in for `ld4lg_edu.pipeline` used by the explorer's tests (not part of the library).

It keeps the pipeline contract the explorer codes against, with random tensors and deterministic
texts, and enough structure to make the plots mean something:
- every word of a small vocabulary has a random embedding; `decode` maps each of the ℓ latent
  vectors to its nearest word, `encode` maps the first ℓ words of a text back to embeddings;
- each class has a centroid; texts whose class is known (the corpus rows passed in) are pushed
  towards it, and a class sample with guidance scale w is pushed w times as far;
- `sample` walks z_t from noise to a target along a cosine schedule and predicts x̂0 with an error
  that shrinks with t, so the decoded words settle as the steps go on;
- a run of `slow_from` steps or more sleeps `step_seconds` per step (a long action, for the Cancel test).
"""
from __future__ import annotations
import math
import time
import torch

from ld4lg_edu.pipeline import LatentDiffusionPipeline, SampleResult
from ld4lg_edu.samplers import Trajectory

WORDS = ("a an the of in on with and or for to by from small large old new red green dark bright "
         "animal bird fish dog horse insect plant tree flower herb shrub leaf food dish bread sauce fruit "
         "cake drink tool device vessel machine building instrument person man woman worker child leader "
         "city town river mountain region country island place water stone wood metal cloth "
         "kind genus family group part body form member type used having found made").split()


class FakePipeline:
    "Random-tensor pipeline with the contract of `ld4lg_edu.pipeline` (see module docstring)."
    def __init__(self, label_names=("animal", "plant", "food", "artifact", "person", "location"),
                 num_latents: int = 8, latent_dim: int = 16, text_labels: dict | None = None, seed: int = 0,
                 slow_from: int | None = 100, step_seconds: float = 0.2):
        self.slow_from, self.step_seconds = slow_from, step_seconds
        self.label_names = list(label_names) if label_names is not None else None
        self.num_latents, self.latent_dim = num_latents, latent_dim
        self.text_labels = dict(text_labels or {})
        g = torch.Generator().manual_seed(seed)
        self.vocab = list(WORDS)
        self.embeddings = torch.randn(len(self.vocab), latent_dim, generator=g)
        num_classes = len(self.label_names) if self.label_names else 0
        self.centroids = 0.8 * torch.randn(max(num_classes, 1), num_latents, latent_dim, generator=g)
        self.calls = 0  # how many times sample() ran (tests check the explorer never resamples)

    conditioning = LatentDiffusionPipeline.conditioning  # the real request checks: names, ids, lists, guidance, same errors
    sampler, steps = "dpmpp2m", 25  # the pipeline's defaults, which the explorer's controls start from

    def encode(self, texts):
        rows = []
        for text in texts:
            words = text.lower().split()[: self.num_latents]
            ids = [self.vocab.index(w) if w in self.vocab else sum(map(ord, w)) % len(self.vocab) for w in words]
            ids += [0] * (self.num_latents - len(ids))
            latent = self.embeddings[ids].clone()
            if text in self.text_labels: latent = latent + self.centroids[self.text_labels[text]]
            rows.append(latent)
        return torch.stack(rows)

    def decode(self, latents):
        latents = torch.as_tensor(latents, dtype=torch.float32)
        nearest = (latents @ self.embeddings.T - 0.5 * (self.embeddings ** 2).sum(-1)).argmax(-1)  # (B, ℓ)
        return [" ".join(self.vocab[i] for i in row.tolist()) for row in nearest]

    def sample(self, n, label=None, guidance_scale=1.0, steps=25, sampler="dpmpp2m", seed=None,
               return_trajectory=False, decode_every=1, callback=None):
        start = time.perf_counter()
        if sampler not in ("ddpm", "ddim", "dpmpp2m"): raise ValueError(f"unknown sampler {sampler!r}")
        conditioning = self.conditioning(n, label, guidance_scale)
        guidance_scale = conditioning.guidance_scale
        self.calls += 1
        ids = conditioning.class_labels
        labels = [None] * n if ids is None else ids.tolist()
        g = torch.Generator().manual_seed(0 if seed is None else int(seed))
        words = torch.randint(len(self.vocab), (n, self.num_latents), generator=g)
        target = self.embeddings[words]
        for j, lab in enumerate(labels):
            if lab is not None: target[j] += guidance_scale * self.centroids[lab]
        noise = torch.randn(target.shape, generator=g)
        error = torch.randn(target.shape, generator=g)
        t = torch.linspace(1, 0, steps + 1)[:-1]
        alpha = torch.cos(0.5 * math.pi * t) ** 2
        a = alpha.view(-1, 1, 1, 1)
        noisy = a.sqrt() * target + (1 - a).sqrt() * noise
        x0 = target + 2.0 * (1 - a).sqrt() * error
        if sampler == "ddpm": x0 = x0 + 0.1 * (1 - a).sqrt() * torch.randn(x0.shape, generator=g)
        for i in range(steps):
            if self.slow_from is not None and steps >= self.slow_from: time.sleep(self.step_seconds)
            if callback is not None: callback(i, steps)
        trajectory = None
        if return_trajectory:
            texts = [self.decode(x0[i]) if i % decode_every == 0 else None for i in range(steps)]
            trajectory = Trajectory(t=t, alpha=alpha, noisy=noisy, x0_pred=x0, texts=texts)
        settings = dict(n=n, label=label, guidance_scale=guidance_scale, steps=steps, sampler=sampler, seed=seed)
        return SampleResult(self.decode(target), labels, target, trajectory, settings, self.label_names,
                            time.perf_counter() - start)


def make_fake_pipeline(label_names=("animal", "plant", "food", "artifact", "person", "location")):
    "A fake pipeline that knows the classes of the shipped wordnet corpus rows (so data latents cluster)."
    from ld4lg_edu.data import load_corpus
    corpus = load_corpus("wordnet")
    text_labels = {r["text"]: r["label"] for r in corpus.splits["train"]} if label_names else {}
    return FakePipeline(label_names=label_names, text_labels=text_labels)


def make_unconditional_fake():
    return FakePipeline(label_names=None)
