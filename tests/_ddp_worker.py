"""Worker for the two-process (CPU, gloo) test of `nt_xent(..., gather=True)` under DDP.

Each process runs a small float64 model on its slice of one global batch, wrapped in
DistributedDataParallel, and saves its parameter gradients and loss. The test compares them with
`single_process_gradients`: the same model on the whole batch in one process.
"""

import os

import torch
import torch.distributed as dist
from torch import nn

from phys555_cl.losses import nt_xent

# local batch sizes of the two processes
CASES = {"equal": (4, 4), "uneven": (5, 2)}
TEMPERATURE = 0.5


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 4)).double()


def global_batch(total: int):
    g = torch.Generator().manual_seed(total)
    x1 = torch.randn(total, 3, generator=g, dtype=torch.float64)
    return x1, x1 + 0.3 * torch.randn(total, 3, generator=g, dtype=torch.float64)


def _loss(model, x1, x2, gather):
    z = model(torch.cat([x1, x2]))  # one forward call per step, as DDP prefers
    z1, z2 = z.chunk(2)
    return nt_xent(z1, z2, TEMPERATURE, gather=gather)


def single_process_gradients(sizes):
    model = make_model()
    x1, x2 = global_batch(sum(sizes))
    loss = _loss(model, x1, x2, gather=False)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    return {"loss": loss.item(), "grads": grads}


def run(rank: int, world: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        for case, sizes in CASES.items():
            model = nn.parallel.DistributedDataParallel(make_model())
            x1, x2 = global_batch(sum(sizes))
            start = sum(sizes[:rank])
            rows = slice(start, start + sizes[rank])
            loss = _loss(model, x1[rows], x2[rows], gather=True)
            loss.backward()
            grads = {name.removeprefix("module."): p.grad.clone()
                     for name, p in model.named_parameters()}
            torch.save({"loss": loss.item(), "grads": grads},
                       os.path.join(out_dir, f"{case}_rank{rank}.pt"))
        dist.barrier()  # both are done before either tears gloo down
    finally:
        dist.destroy_process_group()
    # Leave without running C++ static destructors: gloo's threads sometimes abort the process
    # there ("terminate called without an active exception") after all the work is saved.
    os._exit(0)
