"""The built-in tiny model: build / save / load, the cached trained model, and that it looks at the image."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from harness.experiments.builtin_models import ensure_tiny, tiny_dir
from harness.models.tiny import TinyConfig, build_tiny_model

log = logging.getLogger(__name__)

SMALL = TinyConfig(text_hidden=32, vision_hidden=32, heads=2)


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    from harness.models.hf import load_hf_model

    folder = build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", config=SMALL)
    return folder, load_hf_model(folder, device="cpu")


def test_build_save_load_round_trip(untrained):
    from PIL import Image

    folder, vlm = untrained
    for name in ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"):
        assert (folder / name).is_file(), name
    assert vlm.family.name == "llava"
    assert vlm.format_prompt("Is there a mass?") == "USER: <image>\nIs there a mass?\nASSISTANT:"
    assert vlm.format_prompt("Hi", with_image=False) == "USER: Hi\nASSISTANT:"
    images = [Image.new("L", (64, 64), 40), Image.new("L", (64, 64), 200)]
    answers = vlm.generate(images, ["Is there a mass?\nAnswer yes or no.", "Describe the findings."])
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)


def test_image_placeholder_expands_to_one_token_per_patch(untrained):
    from PIL import Image

    _, vlm = untrained
    inputs = vlm.processor_inputs([Image.new("RGB", (64, 64))], [vlm.format_prompt("Is there a mass?")], "left")
    image_id = vlm.model.config.image_token_id
    patches = (SMALL.image_size // SMALL.patch_size) ** 2
    assert int((inputs["input_ids"] == image_id).sum()) == patches
    assert tuple(inputs["pixel_values"].shape[-2:]) == (SMALL.image_size, SMALL.image_size)


def test_assistant_turn_ends_with_eos(untrained):
    _, vlm = untrained
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "no"}]}]
    text = vlm.processor.apply_chat_template(messages, tokenize=False)
    assert text == "USER: <image>\nQ\nASSISTANT: no</s>"


@pytest.mark.parametrize("text", [
    "Is there a nodule in the right upper lung?",
    "Are the kidneys normal on this T2-weighted MRI? ~ 3.5cm, café, 肺",
])
def test_tokenizer_round_trips_any_text(untrained, text):
    _, vlm = untrained
    ids = vlm.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert vlm.tokenizer.unk_token_id not in ids
    assert vlm.tokenizer.decode(ids) == text


def test_synthetic_words_are_single_tokens(untrained):
    _, vlm = untrained
    for word in (" nodule", " pneumothorax", " effusion", " yes", " no"):
        assert len(vlm.tokenizer(word, add_special_tokens=False)["input_ids"]) == 1, word


def test_interrupted_build_leaves_no_folder(tmp_path, monkeypatch):
    import harness.experiments.sft as sft

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sft, "train_sft", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_tiny(config=TinyConfig(text_hidden=32, vision_hidden=32, heads=2, train_vqa=16, train_report=8))
    models = tmp_path / "models"
    assert not tiny_dir().exists()
    assert list(models.iterdir()) == []


@pytest.mark.slow
def test_ensure_tiny_is_cached(tiny_model_dir, monkeypatch):
    import harness.experiments.sft as sft

    assert tiny_model_dir == tiny_dir() and (tiny_model_dir / "tiny.json").is_file()
    weights = tiny_model_dir / "model.safetensors"
    stamp = weights.stat().st_mtime_ns

    def retrain(*args, **kwargs):
        raise AssertionError("ensure_tiny retrained a cached model")

    monkeypatch.setattr(sft, "train_sft", retrain)
    assert ensure_tiny() == tiny_model_dir
    assert weights.stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_registered_name_loads_the_cached_model(tiny_model_dir):
    from harness.models import load_model

    model = load_model("tiny", device="cpu")
    assert model.name == "tiny" and Path(model.path) == tiny_model_dir


def _closed_accuracy(vlm, dataset, ablation: str | None) -> float:
    from harness.evaluation.ablation import ablate_image
    from harness.tasks.synth import SYNTH_VQA

    correct = 0
    for start in range(0, len(dataset), 32):
        rows = dataset.select(range(start, min(start + 32, len(dataset))))
        images = [r["image"] if ablation is None else ablate_image(r["image"], ablation, sample_id=r["id"])
                  for r in rows]
        answers = vlm.generate(images, [SYNTH_VQA.prompt(r) for r in rows])
        correct += sum(a.strip().lower().rstrip(".") == r["answer"] for a, r in zip(answers, rows))
    return correct / len(dataset)


@pytest.mark.slow
def test_tiny_model_looks_at_the_image(tiny_model_dir):
    """On synth_vqa closed test questions, real images beat blanked ones by at least 10 points."""
    from harness.models.hf import load_hf_model
    from harness.tasks.synth import SYNTH_VQA

    vlm = load_hf_model(tiny_model_dir, device="cpu")
    closed = SYNTH_VQA.load("test", test_size=200).filter(lambda r: r["answer_type"] == "closed")
    with_image = _closed_accuracy(vlm, closed, None)
    blank = _closed_accuracy(vlm, closed, "blank")
    majority = max(closed["answer"].count("no"), closed["answer"].count("yes")) / len(closed)
    log.warning("tiny closed accuracy on %d items: image %.3f, blank %.3f, text-only majority %.3f",
                len(closed), with_image, blank, majority)
    assert with_image - blank >= 0.10, (with_image, blank)
    assert with_image > majority + 0.05, (with_image, majority)
