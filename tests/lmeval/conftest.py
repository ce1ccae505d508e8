"""A saved tiny LLaVA for the lm-eval bridge (the session's ``tiny_model_dir`` when one is provided)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def lmeval_model_dir(request, tmp_path_factory):
    try:
        return request.getfixturevalue("tiny_model_dir")
    except pytest.FixtureLookupError:
        from harness.models import tiny

        return tiny.build_tiny_model(tmp_path_factory.mktemp("lmeval_tiny"))
