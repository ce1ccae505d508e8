"""Fixtures for the evaluation tests: a toy task with real images, toy metrics, and models.

The toy task draws a bright square on the left or the right of a dark image; its questions ask where
the square is, so a model that reads the image answers right and a blanked image takes that away.
``OracleModel`` answers by looking at the pixels (fast, deterministic: for the engine's logic);
``tiny_hf_model`` is a real LLaVA-architecture model (the trained ``tiny_model_dir``) for the generation path
itself.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from harness.metrics import METRICS, Metric, MetricResult
from harness.models.base import GenerationConfig, VisionLanguageModel
from harness.tasks import TASKS, Task


def _images_and_rows(n: int, size: int = 32):
    from PIL import Image

    rows, rng = [], np.random.default_rng(0)
    for i in range(n):
        side = "left" if i % 3 else "right"
        pixels = np.full((size, size, 3), 20, dtype=np.uint8)
        x0 = 2 if side == "left" else size // 2 + 2
        pixels[8:20, x0:x0 + 10] = 230
        kind = ("closed", "open", "report")[i % 3] if i < n - 2 else "closed"
        question = {
            "closed": "is the square on the left" + " side of the image" * int(rng.integers(0, 3)) + "?",
            "open": "where is the square?",
            "report": "describe the image.",
        }[kind]
        answer = {"closed": "yes" if side == "left" else "no", "open": side, "report": f"a square on the {side}."}[kind]
        rows.append({"id": f"toy-{i:03d}", "image": Image.fromarray(pixels), "question": question, "answer": answer,
                     "answer_type": kind, "side": side})
    return rows


class ToyTask(Task):
    def _load(self, split, data_dir, **options):
        import datasets

        rows = _images_and_rows(int(options.get("n", 14)))
        features = datasets.Features({
            "id": datasets.Value("string"), "image": datasets.Image(), "question": datasets.Value("string"),
            "answer": datasets.Value("string"), "answer_type": datasets.Value("string"),
            "side": datasets.Value("string"),
        })
        return datasets.Dataset.from_list(rows, features=features)


def _mean_metric(name: str, subset: str | None) -> Metric:
    def compute(predictions, references, *, seed=0, n_boot=1000):
        scores = np.array([float(p.strip().lower() == r.strip().lower()) for p, r in zip(predictions, references)])
        rng = np.random.default_rng(seed)
        boots = scores[rng.integers(0, len(scores), (n_boot, len(scores)))].mean(axis=1)
        return MetricResult(name, float(scores.mean()), float(np.percentile(boots, 2.5)),
                            float(np.percentile(boots, 97.5)), len(scores), True, scores.tolist())

    return Metric(name=name, higher_is_better=True, compute=compute, subset=subset)


TOY_TASK = ToyTask(name="toy_eval", family="vqa", version="0.1", metrics=("toy_exact", "toy_closed", "toy_open"))
TASKS.register("toy_eval", TOY_TASK)
TOY_METRICS = {name: _mean_metric(name, subset) for name, subset in
               (("toy_exact", None), ("toy_closed", "closed"), ("toy_open", "open"))}
for _name, _metric in TOY_METRICS.items():
    METRICS.register(_name, _metric)


class OracleModel(VisionLanguageModel):
    """Answers the toy task from the pixels: the brighter half holds the square. Counts what it answers."""

    name = "oracle"

    def __init__(self):
        self.calls: list[list[str]] = []
        self.lock = threading.Lock()

    def generate(self, images, prompts, config: GenerationConfig | None = None):
        with self.lock:
            self.calls.append(list(prompts))
        answers = []
        for image, prompt in zip(images, prompts):
            pixels = np.asarray(image.convert("L"), dtype=float)
            half = pixels.shape[1] // 2
            diff = pixels[:, :half].mean() - pixels[:, half:].mean()
            side = "left" if diff > 1 else "right" if diff < -1 else "unknown"
            if "yes or no" in prompt:
                answers.append("yes" if side == "left" else "no")
            elif "short phrase" in prompt:
                answers.append(side)
            else:
                answers.append(f"a square on the {side}.")
        return answers

    @property
    def answered(self) -> int:
        return sum(len(c) for c in self.calls)


class FailingModel(VisionLanguageModel):
    """Wraps a model and raises after ``fail_after`` generate calls: an interrupted evaluation."""

    def __init__(self, inner: VisionLanguageModel, fail_after: int):
        self.inner, self.fail_after, self.calls = inner, fail_after, 0
        self.name = inner.name

    def generate(self, images, prompts, config=None):
        if self.calls >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.calls += 1
        return self.inner.generate(images, prompts, config)


@pytest.fixture
def oracle():
    return OracleModel()


@pytest.fixture(scope="session")
def tiny_hf_dir(tiny_model_dir):
    """The trained built-in ``tiny`` model's folder (``tiny_model_dir``)."""
    return tiny_model_dir


@pytest.fixture(scope="session")
def tiny_hf_model(tiny_hf_dir):
    from harness.models.hf import load_hf_model

    return load_hf_model(tiny_hf_dir, device="cpu", dtype="fp32")


@pytest.fixture
def oracle_cls():
    return OracleModel


@pytest.fixture
def failing_cls():
    return FailingModel
