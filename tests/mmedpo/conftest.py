"""Fixtures for the MMedPO tests: real synthetic samples, scripted judges and a tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest


class ScriptedJudge:
    """A judge that answers from a list of replies (the last one repeats) and records every prompt."""

    def __init__(self, replies, name: str = "scripted"):
        self.replies = list(replies)
        self.name = name
        self.prompts: list[str] = []

    def chat(self, messages, **params):
        self.prompts.append(messages[-1]["content"] if len(messages) == 1 else messages[0]["content"])
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def describe(self):
        return {"kind": "scripted", "name": self.name}


@pytest.fixture
def scripted_judge():
    return ScriptedJudge


@pytest.fixture(scope="session")
def synth_train():
    from harness.tasks import get_task

    task = get_task("synth_vqa")
    return task, task.load("train", train_size=48)


@pytest.fixture(scope="session")
def synth_reports():
    from harness.tasks import get_task

    task = get_task("synth_report")
    return task, task.load("train", train_size=24)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from harness.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("mmedpo_tiny"))


@pytest.fixture(scope="session")
def tiny_vlm(tiny_model_dir):
    from harness.models.hf import load_hf_model

    return load_hf_model(tiny_model_dir, device="cpu", dtype="fp32")


class DenyingVLM:
    """A base model that reads the case from its image and makes the testbed's main error: its greedy report
    (or yes/no answer) denies the lesion on most lesion cases ("The lungs are clear."), while its samples at
    temperature 1 only ever get a lesion's size wrong, so the ground-truth judge finds no denial among them.

    ``deny_every``: the greedy answer denies the lesion of every lesion case but each ``deny_every``-th one.
    """

    name = "denying-fake"

    def __init__(self, dataset, task, deny_every: int = 5):
        self.cases = {(s["image"].tobytes(), task.prompt(s)): s for s in dataset}
        self.deny_every = deny_every
        self.greedy_calls = self.sample_calls = 0

    def _case(self, image, prompt):
        return self.cases[image.tobytes(), prompt]

    def denies(self, case) -> bool:
        from harness.curation.errortypes import is_lesion_case

        return bool(is_lesion_case(case)) and int(str(case["id"])[-6:]) % self.deny_every != 0

    def greedy(self, case) -> str:
        from harness.tasks.synth import write_report

        if not self.denies(case):
            return case["answer"]
        if case["answer_type"] == "report":
            return write_report([])  # "The heart size is normal. The lungs are clear. ..."
        return "no" if case["answer"] == "yes" else case["answer"]

    @staticmethod
    def resized(case) -> list[str]:
        import re

        answer = case["answer"]
        other = {"small": "large", "medium": "small", "large": "small"}
        changed = re.sub(r"\b(small|medium|large)\b", lambda m: other[m.group(1)], answer, count=1)
        return [changed, answer]

    def generate(self, images, prompts, config=None):
        cases = [self._case(i, p) for i, p in zip(images, prompts)]
        if not config.do_sample:
            self.greedy_calls += 1
            return [self.greedy(c) for c in cases]
        self.sample_calls += 1
        k = config.num_return_sequences
        return [(self.resized(c) * k)[:k] if k > 1 else self.resized(c)[0] for c in cases]  # as HF returns

    def describe(self):
        return {"name": self.name, "deny_every": self.deny_every}


@pytest.fixture
def denying_vlm():
    return DenyingVLM
