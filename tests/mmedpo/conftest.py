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
