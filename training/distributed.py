"""torchrun / DDP plumbing. A plain `python -m training ...` is a world of one process.

Under torchrun (RANK, WORLD_SIZE, LOCAL_RANK set) the process group is initialised with NCCL
on GPUs and gloo on CPU.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def backend(self) -> str:
        """nccl / gloo under torchrun, "none" for a plain single process."""
        return dist.get_backend() if self.enabled else "none"

    @property
    def enabled(self) -> bool:
        return dist.is_available() and dist.is_initialized()


def setup(device: str = "auto") -> Dist:
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was given but no CUDA GPU is visible")
    if "WORLD_SIZE" in os.environ and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    return Dist(rank, world, local_rank, dev)


def all_true(flag: bool, d: Dist) -> bool:
    """True only if `flag` holds on every process (so all skip a step together)."""
    if not d.enabled:
        return flag
    t = torch.tensor([0.0 if flag else 1.0], device=d.device)
    dist.all_reduce(t)
    return t.item() == 0.0


def average_gradients(params, d: Dist) -> None:
    """Manual gradient averaging, for models trained with double backward (gradient penalty),
    which DistributedDataParallel's hooks do not support."""
    if not d.enabled or d.world == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= d.world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
