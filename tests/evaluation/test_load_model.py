from __future__ import annotations

import pytest

from harness.core.errors import HarnessError, UnknownNameError
from harness.models import MODELS, load_model
from harness.models.hf import HFVisionLanguageModel


def test_registered_name_calls_its_factory_with_given_options(oracle_cls):
    seen = {}

    def factory(**options):
        seen.update(options)
        return oracle_cls()

    MODELS.register("toy_oracle_model", factory)
    model = load_model("toy_oracle_model", device="cpu", dtype=None)
    assert model.name == "oracle" and seen == {"device": "cpu"}  # None options are dropped


def test_unknown_name_suggests_close_ones(oracle_cls):
    MODELS.register("toy_oracle_model2", lambda **o: oracle_cls())
    with pytest.raises(UnknownNameError, match="did you mean 'toy_oracle_model2'"):
        load_model("toy_oracle_modle2")


def test_factory_must_return_a_model():
    MODELS.register("toy_not_a_model", lambda **o: object())
    with pytest.raises(HarnessError, match="not a model"):
        load_model("toy_not_a_model")


def test_folder_and_prefixed_specs_load_the_hf_adapter(tiny_hf_dir):
    for spec in (str(tiny_hf_dir), f"hf:{tiny_hf_dir}", f"llava:{tiny_hf_dir}"):
        model = load_model(spec, device="cpu")
        assert isinstance(model, HFVisionLanguageModel) and model.family.name == "llava"


def test_bad_specs_are_one_line_errors(tmp_path):
    with pytest.raises(HarnessError, match="needs a model name"):
        load_model("openai:")
    with pytest.raises(HarnessError, match="no config.json"):
        load_model(str(tmp_path))
