"""Which share of the work this process does, under ``accelerate launch``, ``torchrun`` or alone.

``current_process()`` reads ``accelerate``'s state when several processes were launched; a
``ProcessGroup`` can also be built by hand (tests simulate ranks with threads and a ``threading.Barrier``).

On CPU processes accelerate must be told it runs on CPUs: ``PartialState()`` joins the processes only over
an accelerator backend (NCCL and the like) or, with ``cpu=True``, over gloo; without a GPU and without
``cpu=True`` it sets up no process group and every process calls itself rank 0 of 1, so each answered
every item. (``accelerate launch --cpu`` does not help by itself: its ``ACCELERATE_USE_CPU`` is read by
``Accelerator``, not by ``PartialState``.)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
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
    """The process group of this launch (``accelerate launch`` or ``torchrun``: NCCL on GPUs, gloo on CPUs),
    or a single process."""
    world_size = world_size_from_env()
    if world_size <= 1:
        return ProcessGroup()
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    from harness.core.errors import HarnessError
    from harness.training.distributed import close_process_group_at_exit, runs_on_cpu

    state = PartialState(cpu=runs_on_cpu())
    close_process_group_at_exit()
    if state.num_processes != world_size:
        # one process each believing it is alone would answer every item, and all would write the same files
        raise HarnessError(f"the launch started {world_size} processes (WORLD_SIZE) but accelerate joined "
                           f"{state.num_processes} ({state.distributed_type}): launch with accelerate launch or "
                           "torchrun, and on CPUs use the gloo backend")

    def broadcast(value: Any) -> Any:
        box = [value]
        broadcast_object_list(box, from_process=0)
        return box[0]

    return ProcessGroup(state.process_index, state.num_processes, state.wait_for_everyone, broadcast)


@contextmanager
def held_by_main(process: ProcessGroup, lock: Callable[[], AbstractContextManager[Any]]) -> Iterator[None]:
    """``lock()`` held by the main process for the block (one holder per launch: the processes of one launch
    share the run). When the main process cannot get it every process fails with its one-line error, rather
    than the others waiting for it at the next barrier."""
    from harness.core.errors import HarnessError

    with ExitStack() as stack:
        refused = None
        if process.is_main:
            try:
                stack.enter_context(lock())
            except HarnessError as exc:
                refused = str(exc)
        refused = process.broadcast(refused)
        if refused:
            raise HarnessError(refused)
        yield
