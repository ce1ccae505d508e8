"""``harness train`` and ``harness sft`` end to end on the tiny model, and the real MMedPO release pairs."""

from __future__ import annotations

import json
import math
import random

import pytest
from helpers import LocalDPO, make_pairs

from harness.cli import main
from harness.curation.preferences import read_pairs, write_pairs
from harness.methods import METHODS
from harness.models.hf import load_hf_model
from harness.training import TrainConfig, train_preference


@pytest.fixture(scope="module", autouse=True)
def register_local_dpo():
    added = "test_dpo" not in METHODS
    if added:
        METHODS.register("test_dpo", LocalDPO)
    yield
    if added:  # other modules list every registered method and expect a citation on each
        METHODS.unregister("test_dpo")


def test_train_command_trains_and_resumes(tiny_model, image_dir, tmp_path, capsys):
    pairs_file = tmp_path / "pairs.jsonl"
    write_pairs(pairs_file, make_pairs(4))
    argv = ["train", "--method", "test_dpo", "--model", str(tiny_model), "--pairs", str(pairs_file),
            "--image-root", str(image_dir), "--output", str(tmp_path / "run"), "--max-steps", "2",
            "--batch-size", "2", "--set", "beta=0.2", "--save-every", "1", "--lora-r", "4"]
    assert main(argv) == 0
    assert "trained test_dpo for 2 steps" in capsys.readouterr().out
    config = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert config["hparams"]["beta"] == 0.2 and config["config"]["lora_r"] == 4
    assert main(argv) == 2  # checkpoints exist: refuses without --resume
    assert "pass --resume" in capsys.readouterr().err
    assert main([*argv, "--resume"]) == 0


def test_train_command_reports_bad_input_in_one_line(tiny_model, tmp_path, capsys):
    assert main(["train", "--method", "dpoo", "--model", str(tiny_model), "--pairs", str(tmp_path / "x")]) == 2
    assert "unknown method 'dpoo'" in capsys.readouterr().err
    assert main(["train", "--method", "test_dpo", "--model", str(tiny_model), "--pairs", str(tmp_path / "x"),
                 "--schedule", "cosine", "--lr", "-1"]) == 2
    assert "lr must be > 0" in capsys.readouterr().err


def test_sft_command_from_records(tiny_model, image_dir, tmp_path, capsys):
    records = tmp_path / "sft.jsonl"
    rows = [{"image": f"img{i % 4}.png", "prompt": "describe the image.", "response": "the heart is normal"}
            for i in range(4)]
    records.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["sft", "--model", str(tiny_model), "--records", str(records), "--image-root", str(image_dir),
                 "--output", str(tmp_path / "sft"), "--max-steps", "2", "--batch-size", "2", "--no-lora",
                 "--lr", "1e-3"]) == 0
    out = capsys.readouterr().out
    assert "model:" in out and (tmp_path / "sft" / "model" / "config.json").is_file()
    history = [json.loads(line) for line in (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert history[1]["loss"] < history[0]["loss"]


def test_dpo_on_released_vqa_rad_pairs(tiny_model, shared_data, tmp_path):
    release = shared_data / "mmedpo_release" / "vqa-rad_dpo_weighted.json"
    images = shared_data / "vqa_rad" / "images"
    if not release.is_file() or not images.is_dir():
        pytest.skip("MMedPO release VQA-RAD pairs or VQA-RAD images missing")
    pairs = list(read_pairs(release))
    subset = random.Random(0).sample(pairs, 4)
    method = METHODS.get("dpo")()
    config = TrainConfig(max_steps=2, batch_size=4, lr=1e-3, max_length=512, lora_r=4)
    model = load_hf_model(tiny_model, device="cpu", dtype="fp32")
    result = train_preference(model, method, subset, images, tmp_path / "run", config)
    assert len(result.history) == 2 and all(math.isfinite(h["loss"]) for h in result.history)
    weights = [p.weight for p in subset]
    # LoRA starts at the reference, so step 1 is mean(w_i) * log 2 with the release's weighted_score
    assert result.history[0]["loss"] == pytest.approx(sum(weights) / len(weights) * math.log(2), rel=1e-4)
    assert (result.model_path / "model.safetensors").is_file()
