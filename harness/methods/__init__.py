"""Method registry (built-ins are lazy entries; plugins use the ``harness.methods`` entry-point group)."""

from __future__ import annotations

from harness.methods.base import LogProbs, LossOutput, Method, PairContext
from harness.registry import Registry

METHODS: Registry[type[Method]] = Registry("method", entry_point_group="harness.methods")

for _name, _target in {
    "sft": "baselines.sft:SFT",
    "dpo": "baselines.dpo:DPO",
    "ipo": "baselines.dpo:IPO",
    "robust": "baselines.dpo:RobustDPO",
    "cdpo": "baselines.dpo:ConservativeDPO",
    "hinge": "baselines.dpo:Hinge",
    "simpo": "baselines.simpo:SimPO",
    "orpo": "baselines.orpo:ORPO",
    "dpo_nll": "baselines.dpo:DPONLL",
    "copo": "baselines.mdpo:CoPO",
    "mdpo": "baselines.mdpo:MDPO",
    "povid": "baselines.povid:POVID",
    "self_rewarding": "baselines.self_rewarding:SelfRewarding",
    "stllava_med": "baselines.stllava_med:STLLaVAMed",
    "sima": "baselines.sima:SIMA",
    "fisao": "baselines.fisao:FiSAO",
    "mmedpo": "mmedpo.method:MMedPO",
}.items():
    METHODS.register_lazy(_name, _target)


def get_method(name: str) -> type[Method]:
    return METHODS.get(name)


__all__ = ["METHODS", "LogProbs", "LossOutput", "Method", "PairContext", "get_method"]
