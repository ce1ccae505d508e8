"""``harness diagnose``: each property's computation on constructed cases, the lesion-free twin, and the
scorer against the training core's own log-probabilities."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from harness.experiments import diagnose as dg
from harness.tasks.synth import Lesion, generate_case


def _lesion(kind: str, side: str, level: str = "upper", size: str = "small") -> Lesion:
    return Lesion(kind, side, level, size, [0, 0, 1, 1])


def test_probe_reads_a_linear_signal_and_not_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 30))
    y = (x[:, 3] - 0.5 * x[:, 7] > 0).astype(int)
    assert dg.probe_accuracy(x[:300], y[:300], x[300:], y[300:]) >= 0.9
    noise = rng.integers(0, 2, size=400)
    assert dg.probe_accuracy(x[:300], noise[:300], x[300:], noise[300:]) < 0.7
    assert math.isnan(dg.probe_accuracy(x[:10], np.ones(10), x[10:20], np.ones(10)))  # one class: no probe


def test_report_properties_count_one_lesion_cases_only():
    lesions = [[_lesion("mass", "right")], [_lesion("nodule", "left")], [_lesion("effusion", "left", "lower")],
               [_lesion("mass", "right")], [], [_lesion("mass", "right"), _lesion("nodule", "left")]]
    reports = [
        "The heart size is normal. There is a large mass in the right upper lung.",   # named: side ok, kind ok
        "There is a small nodule in the right lower lung.",                           # named: side wrong, kind ok
        "There is a small left pleural effusion... There is a mass in the left lung.",  # first finding: ok, ok
        "The lungs are clear. There is no pleural effusion or pneumothorax.",         # not named (denial)
        "There is a small nodule in the left lower lung.",                            # normal case: ignored
        "The lungs are clear.",                                                       # two lesions: ignored
    ]
    out = dg.report_properties(reports, lesions)
    assert out["one_lesion_cases"] == 4 and out["named"] == 3
    assert out["report_names_lesion"] == pytest.approx(3 / 4)
    assert out["side_accuracy_when_named"] == pytest.approx(2 / 3)
    assert out["kind_accuracy_when_named"] == pytest.approx(1.0)
    assert out["names_flags"] == [True, True, True, False, None, None]


def test_presence_accuracy_is_balanced_so_the_no_prior_scores_half():
    expected = [True] * 2 + [False] * 8
    all_no = dg.presence_accuracy(["no"] * 10, expected)
    assert all_no["balanced_accuracy"] == pytest.approx(0.5)  # plain accuracy would be 0.8
    mixed = dg.presence_accuracy(["yes", "Yes, there is.", "no", "yes", "?", "no", "no", "no", "no", "no"], expected)
    assert mixed["sensitivity"] == 1.0 and mixed["specificity"] == pytest.approx(6 / 8)  # "?" counts as wrong
    assert mixed["balanced_accuracy"] == pytest.approx((1.0 + 0.75) / 2)
    assert dg.yes_no("No.") is False and dg.yes_no("nodule") is None


def test_conditional_share_and_margins():
    share, n = dg.conditional_share([True, False, None, True, False], [True, True, True, False, True])
    assert (share, n) == (pytest.approx(1 / 3), 3)
    margin = dg.median_margin([-5.0, -4.0, -3.0, -9.0], [-7.0, -4.5, -3.0, -10.0])
    assert margin["median"] == pytest.approx(0.75) and margin["n"] == 4  # differences 2, 0.5, 0, 1


def test_targets_fail_on_nan_and_on_the_wrong_side():
    props = {name: 1.0 for name in dg.TARGETS} | {"report_names_lesion": 0.7, "median_noise_margin": float("nan")}
    checked = dg.check_targets(props)
    assert not checked["report_names_lesion"]["met"] and not checked["median_noise_margin"]["met"]
    assert checked["probe_presence_accuracy"] == {"target": ">= 0.95", "met": True}


def test_erased_twin_is_the_same_film_without_its_lesions():
    from scipy.ndimage import binary_dilation

    seen_lesion = seen_normal = False
    for index in range(30):
        image, mask, case = generate_case("test", index)
        twin, twin_mask, twin_case = generate_case("test", index, erase=True)
        assert twin_case.to_json() == case.to_json() and (twin_mask == mask).all()
        if not case.lesions:
            assert (twin == image).all()
            seen_normal = True
            continue
        seen_lesion = True
        inside = mask > 0
        near = binary_dilation(inside, iterations=2)  # the blur spreads a lesion's edge by a pixel or two
        diff = np.abs(image.astype(int) - twin.astype(int))
        assert diff[~near].max() <= 2 and diff[inside].mean() > 20
    assert seen_lesion and seen_normal


def test_response_logps_match_the_training_core(tiny_model_dir):
    """The diagnose scorer gives the log-probabilities a preference pair's loss sees."""
    from PIL import Image

    from harness.curation.preferences import PreferencePair
    from harness.models.hf import load_hf_model
    from harness.training.batch import Collator, PairDataset
    from harness.training.encoding import RowEncoder
    from harness.training.logps import sequence_logps

    model = load_hf_model(tiny_model_dir, device="cpu")
    images, prompts, responses = [], [], []
    for index in range(3):
        pixels, _, case = generate_case("test", index, image_size=32)
        images.append(Image.fromarray(pixels).convert("RGB"))
        prompts.append("Describe the findings of this chest X-ray.")
        responses.append(case.report)
    ours = dg.response_logps(model, images, prompts, responses, batch_size=2)
    encoder = RowEncoder(model.processor, model.format_prompt, max_length=4096)
    pairs = [PreferencePair(id=str(i), image="x", prompt=p, chosen=r, rejected="", kind="sft")
             for i, (p, r) in enumerate(zip(prompts, responses))]
    dataset = PairDataset(pairs, None, encoder, with_rejected=False)
    dataset._image = lambda pair, which: images[int(pair.id)]  # images in memory, not on disk
    batch = Collator(model.tokenizer.pad_token_id)([dataset[i] for i in range(3)])
    import torch

    with torch.inference_mode():
        core = sequence_logps(model.model, batch)["chosen"]["sum"].numpy()
    assert np.allclose(ours, core, atol=1e-4) and (ours < 0).all()


def test_cli_json_is_strict_json_with_every_property(tiny_model_dir):
    """The command's stdout is the JSON alone (library banners such as DeepSpeed's go to stderr)."""
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "harness", "diagnose", "--model", "tiny", "--cases", "40",
                           "--probe-cases", "60", "--format", "json", "--no-progress"],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert set(out["properties"]) == set(dg.PROPERTIES)
    assert set(out["targets"]) == set(dg.TARGETS)
    assert out["details"]["cases"] == 40 and out["details"]["probe_train_cases"] == 60
    assert out["config"]["noise_schedule"] == "linear" and out["config"]["noise_step"] == 500


def test_cli_refuses_an_endpoint_in_one_line(capsys):
    from harness.cli import main

    assert main(["diagnose", "--model", "openai:gpt-4o-mini"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
