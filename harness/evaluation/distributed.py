"""Which share of the work this process does, under ``accelerate launch`` or alone.

``current_process()`` reads ``accelerate``'s state when several processes were launched; a
``ProcessGroup`` can also be built by hand (tests simulate ranks with threads and a ``threading.Barrier``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def _no_barrier() -> None:
    return None


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class ProcessGroup:
    """This process's rank, the number of processes, a barrier, and a broadcast from rank 0."""

    rank: int = 0
    world_size: int = 1
    barrier: Callable[[], Any] = field(default=_no_barrier, repr=False)
    broadcast: Callable[[Any], Any] = field(default=_identity, repr=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank_from_env() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def current_process() -> ProcessGroup:
    """The process group ``accelerate launch`` set up, or a single process."""
    if world_size_from_env() <= 1:
        return ProcessGroup()
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    state = PartialState()

    def broadcast(value: Any) -> Any:
        box = [value]
        broadcast_object_list(box, from_process=0)
        return box[0]

    return ProcessGroup(state.process_index, state.num_processes, state.wait_for_everyone, broadcast)
