"""Manual gradient averaging (used for the discriminator, whose gradient penalty DDP cannot
handle) gives every process the mean gradient: two gloo processes on CPU."""
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from training import distributed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, port: int, results) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        d = distributed.Dist(rank=rank, world=2)
        params = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2, 2))]
        params[0].grad = torch.full((3,), float(rank + 1))          # rank 0: 1, rank 1: 2
        params[1].grad = torch.full((2, 2), float(10 * rank))       # rank 0: 0, rank 1: 10
        distributed.average_gradients(params, d)
        agree = distributed.all_true(rank == 0, d)                  # false on rank 1 -> false everywhere
        results[rank] = (params[0].grad.tolist(), params[1].grad.tolist(), agree, d.backend)
    finally:
        dist.destroy_process_group()


def test_average_gradients_and_all_true_across_two_processes():
    with mp.Manager() as manager:
        results = manager.dict()
        # fork: no second torch import per process (the test runs on CPU only)
        mp.start_processes(worker, args=(free_port(), results), nprocs=2, join=True, start_method="fork")
        for rank in (0, 1):
            g0, g1, agree, backend = results[rank]
            assert g0 == [1.5, 1.5, 1.5] and g1 == [[5.0, 5.0], [5.0, 5.0]] and agree is False
            assert backend == "gloo"
