"""Tests for ld4lg_edu.conditioning: the one label check and the one conditioning value, checked when made."""
import dataclasses

import numpy as np
import pytest
import torch

from ld4lg_edu import conditioning, samplers
from ld4lg_edu.conditioning import DEFAULT_GUIDANCE, Conditioning, class_ids


def test_samplers_hands_out_the_same_objects():
    for name in ("Conditioning", "class_ids", "DEFAULT_GUIDANCE"):
        assert getattr(samplers, name) is getattr(conditioning, name), name
        assert name in conditioning.__all__ and name not in samplers.__all__, name


def test_class_ids_reads_ids_names_arrays_and_one_for_all():
    names = ["animal", "plant"]
    assert class_ids("plant", 3, 2, names).tolist() == [1, 1, 1]
    assert class_ids(["plant", 0], 2, 2, names).tolist() == [1, 0]
    assert class_ids(np.array([1, 0]), 2, 2).tolist() == [1, 0]
    assert class_ids(torch.tensor(1), 2, 2).tolist() == [1, 1]
    assert class_ids(np.int64(1), 1, 2).dtype == torch.long
    assert class_ids(None, 4, 2) is None


@pytest.mark.parametrize("labels, match", [
    (True, "out of range"), (-1, r"\[0, 1\]"), (2.0, "out of range"), ("tree", "known labels: animal, plant"),
    (torch.tensor([True, False]), "integer class ids"), ([0, 1, 0], r"shape \(2,\)"),
])
def test_class_ids_refuses_what_is_not_a_class(labels, match):
    with pytest.raises(ValueError, match=match): class_ids(labels, 2, 2, ["animal", "plant"])


def test_names_for_a_model_without_names_and_labels_for_an_unconditional_model():
    with pytest.raises(ValueError, match="this model takes ids"): class_ids("animal", 2, 2)
    with pytest.raises(ValueError, match="drop my_labels"): class_ids(0, 2, 0, arg="my_labels")


def test_conditioning_is_frozen_and_w_is_stored_as_float():
    c = Conditioning(torch.tensor([0, 1]), guidance_scale=3)
    assert isinstance(c.guidance_scale, float) and c.guidance_scale == 3.0 and c.guided
    with pytest.raises(dataclasses.FrozenInstanceError): c.guidance_scale = 1.0
    assert not Conditioning().guided and Conditioning().batch_size is None


def test_per_row_w_fixes_the_batch_and_counts_as_guided():
    w = torch.tensor([1.0, 1.0, 1.0])
    c = Conditioning(torch.tensor([0, 1, 0]), guidance_scale=w)
    assert c.guided and c.batch_size == 3
    with pytest.raises(ValueError, match="one float w per row"):
        Conditioning(torch.tensor([0, 1]), guidance_scale=torch.tensor([2, 2]))
    with pytest.raises(ValueError, match="agree on B"):
        Conditioning(torch.tensor([0, 1]), guidance_scale=w)


@pytest.mark.parametrize("kwargs, match", [
    (dict(class_labels=[0, 1]), r"\(B,\) integer tensor"),
    (dict(class_labels=torch.tensor([0.0, 1.0])), r"\(B,\) integer tensor"),
    (dict(cond=torch.zeros(2, 5)), r"\(B, S, d_c\)"),
    (dict(cond_mask=torch.ones(2, 5, dtype=torch.bool)), "without cond"),
    (dict(cond=torch.zeros(2, 5, 4), cond_mask=torch.ones(2, 5)), "bool tensor"),
    (dict(guidance_scale=True), "finite number"),
    (dict(guidance_scale=1.5), "needs class_labels or cond"),
])
def test_bad_conditionings_are_never_made(kwargs, match):
    with pytest.raises(ValueError, match=match): Conditioning(**kwargs)


def test_a_source_alone_may_be_guided_and_to_moves_every_tensor():
    cond, mask = torch.zeros(2, 5, 4), torch.ones(2, 5, dtype=torch.bool)
    c = Conditioning(cond=cond, cond_mask=mask, guidance_scale=torch.tensor([2.0, 1.0]))
    moved = c.to("meta")
    assert all(x.device.type == "meta" for x in (moved.cond, moved.cond_mask, moved.guidance_scale))
    assert c.cond.device.type == "cpu"  # the original is unchanged


def test_make_defaults_w_only_when_there_is_something_to_guide_towards():
    assert Conditioning.make(2, 0, None, num_classes=2).guidance_scale == DEFAULT_GUIDANCE
    assert Conditioning.make(2, None, None, cond=torch.zeros(2, 3, 4)).guidance_scale == DEFAULT_GUIDANCE
    assert Conditioning.make(2, None, None, num_classes=2).guidance_scale == 1.0
    assert Conditioning.make(2, 1, 4.0, num_classes=2).guidance_scale == 4.0
    with pytest.raises(ValueError, match="^label 5 is out of range"):  # the caller's name for its labels
        Conditioning.make(2, 5, label_names=["animal", "plant"], arg="label")
