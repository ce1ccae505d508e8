"""One argument check for every ``generate``: the HF and the OpenAI-compatible adapters refuse the same way."""

from __future__ import annotations

import pytest
from PIL import Image

from harness.core.errors import HarnessError
from harness.models.base import GenerationConfig, check_generate_args
from harness.models.hf import FAMILIES, HFVisionLanguageModel

IMAGE = Image.new("RGB", (8, 8))


def test_check_generate_args_returns_the_config_or_the_default():
    config = GenerationConfig(max_new_tokens=3)
    assert check_generate_args([IMAGE], ["q"], config) is config
    assert check_generate_args([None, None], ["a", "b"], None) == GenerationConfig()


@pytest.mark.parametrize(("images", "prompts", "message"), [
    ([IMAGE, IMAGE], ["q"], "got 2 images for 1 prompts"),
    ([], ["q", "r"], "got 0 images for 2 prompts"),
])
def test_check_generate_args_refuses_a_count_mismatch(images, prompts, message):
    with pytest.raises(HarnessError, match=f"^{message}$"):
        check_generate_args(images, prompts, None)


def test_hf_model_refuses_before_touching_the_model():
    # no model and no processor: the check has to come first
    vlm = HFVisionLanguageModel(None, None, name="none", path="none", family=FAMILIES["llava"])
    with pytest.raises(HarnessError, match="^got 2 images for 1 prompts$"):
        vlm.generate([IMAGE, IMAGE], ["q"])


def test_openai_model_refuses_before_any_request(tmp_path):
    pytest.importorskip("httpx")
    from harness.models.openai_model import OpenAIChatModel, OpenAIConfig

    # a port nothing listens on: a request would fail with another error
    model = OpenAIChatModel("m", OpenAIConfig(base_url="http://127.0.0.1:9/v1", cache_dir=str(tmp_path)))
    with pytest.raises(HarnessError, match="^got 2 images for 1 prompts$"):
        model.generate([IMAGE, IMAGE], ["q"])
