"""Eval mode around a reference forward, switched cheaply.

``model.eval()`` and ``model.train()`` walk every submodule through ``Module.train`` (and transformers'
override of it) on each call, twice per step for the reference forward. When no module's class does more
in ``train`` than set its ``training`` flag, ``evaluating`` sets the flags of a module list found once per
model instead, which is what those calls do; otherwise it calls them.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from typing import Any

# model -> its modules, or None when some module's ``train`` does more than set the flag
_SWITCHABLE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _plain_train(module: Any) -> bool:
    """Whether ``module.train(mode)`` only sets ``training`` on it and its children."""
    import torch

    train = type(module).train
    if train is torch.nn.Module.train:
        return True
    try:  # transformers' override re-selects kernels on a mode change when kernels are in use; else the same
        from transformers import PreTrainedModel
    except ImportError:
        return False
    return train is PreTrainedModel.train and not getattr(module, "use_kernels", False)


def _switchable(model: Any) -> list[Any] | None:
    if model not in _SWITCHABLE:
        modules = list(model.modules())
        _SWITCHABLE[model] = modules if all(_plain_train(m) for m in modules) else None
    return _SWITCHABLE[model]


@contextmanager
def evaluating(model: Any):
    """``model.eval()`` inside, ``model.train(was_training)`` after (every module's flag set to the model's
    mode before, as ``train`` does)."""
    was_training = model.training
    modules = _switchable(model)
    if modules is None:
        model.eval()
        try:
            yield
        finally:
            model.train(was_training)
        return
    # the flag straight into each module's __dict__, where Module.__init__ put it: Module.__setattr__ would
    # first look the name up among the parameters, buffers and submodules (~2 us a module)
    for module in modules:
        module.__dict__["training"] = False
    try:
        yield
    finally:
        for module in modules:
            module.__dict__["training"] = was_training
