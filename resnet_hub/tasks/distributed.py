"""Several training processes as one: who am I (rank), how many are we (world size), and the few collectives the
training loop needs. The same loop runs under ``torchrun`` (or ``resnet-hub finetune --nproc N``, which starts
torchrun's launcher in-process) and inside Ray Train's workers; both start the processes and set the usual
environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT), Ray also creates the process group itself.

gloo on CPU, nccl on CUDA (the backends each device supports best). Only rank 0 writes files and reports
progress; metrics are summed over ranks so every rank returns the same, exact numbers.
"""

from __future__ import annotations

import os
import sys
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from ..errors import TrainingError

if TYPE_CHECKING:
    import torch

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run; the defaults describe a lone process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    engine: str = "local"  # local | torchrun | ray
    started_group: bool = False  # we created the process group (and so destroy it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun(environ: "os._Environ[str] | dict[str, str] | None" = None) -> bool:
    env = os.environ if environ is None else environ
    return all(k in env for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def setup(device_type: str, engine: str | None = None) -> DistContext:
    """Join the process group the launcher prepared (creating it when it is not there yet), or describe a lone
    process. ``device_type`` picks the backend: nccl for cuda, gloo otherwise."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():  # Ray Train creates the group before our loop runs
        local = int(os.environ.get("LOCAL_RANK", "0"))
        return DistContext(dist.get_rank(), dist.get_world_size(), local, engine or "ray", started_group=False)
    if not launched_by_torchrun():
        return DistContext(engine=engine or "local")
    world = int(os.environ["WORLD_SIZE"])
    rank, local = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    if world == 1:
        return DistContext(engine=engine or "torchrun")
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        import torch

        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend)
    return DistContext(rank, world, local, engine or "torchrun", started_group=True)


def teardown(ctx: DistContext) -> None:
    if ctx.started_group:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def all_sum(ctx: DistContext, values: Sequence[float], device: "torch.device | str" = "cpu") -> list[float]:
    """Element-wise sum of ``values`` over all ranks (float64, so counts stay exact); a lone process gets them
    back unchanged."""
    if not ctx.distributed:
        return [float(v) for v in values]
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return [float(v) for v in tensor.cpu()]


def all_agree(ctx: DistContext, flag: bool, device: "torch.device | str" = "cpu") -> bool:
    """True when ``flag`` is true on every rank (a collective: every rank must call it)."""
    if not ctx.distributed:
        return flag
    return all_sum(ctx, [0.0 if flag else 1.0], device)[0] == 0.0


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        import torch.distributed as dist

        dist.barrier()


def sync_batchnorm(model: "torch.nn.Module", device_type: str) -> "torch.nn.Module":
    """BatchNorm over the global batch (``--sync-bn``): torch's SyncBatchNorm on CUDA; on CPU, where DDP refuses
    SyncBatchNorm ("only work with GPU modules"), the same statistics through :class:`GlobalBatchNorm2d`."""
    import torch

    if device_type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for module in model.modules():
        if type(module) is torch.nn.BatchNorm2d:
            module.__class__ = _global_batchnorm_class()  # same parameters and buffers, same state dict keys
    return model


_GLOBAL_BN: type | None = None


def _global_batchnorm_class() -> type:
    global _GLOBAL_BN
    if _GLOBAL_BN is None:
        import torch
        import torch.distributed as dist
        from torch.distributed.nn.functional import all_reduce  # autograd-aware (its backward all-reduces)

        class GlobalBatchNorm2d(torch.nn.BatchNorm2d):
            """BatchNorm2d whose training statistics are those of all ranks' images together (sums reduced with
            an autograd-aware all-reduce, so gradients flow through the global mean and variance as in
            SyncBatchNorm); evaluation and a lone process behave exactly like BatchNorm2d."""

            # Buffers BatchNorm2d types as optional; forward reads them only with track_running_stats (set).
            num_batches_tracked: torch.Tensor
            running_mean: torch.Tensor
            running_var: torch.Tensor

            def forward(self, x):  # noqa: D401
                if not (self.training and dist.is_available() and dist.is_initialized()):
                    return super().forward(x)
                channels = x.shape[1]
                shape = (1, channels, 1, 1)
                count = torch.full((1,), x.numel() / channels, dtype=x.dtype, device=x.device)
                total = all_reduce(torch.cat([x.sum(dim=(0, 2, 3)), count]))
                n = total[-1]
                mean = total[:channels] / n
                # two passes, as BatchNorm2d computes it: E[x^2] - E[x]^2 loses the variance to cancellation
                var = all_reduce(((x - mean.view(shape)) ** 2).sum(dim=(0, 2, 3))) / n
                if self.track_running_stats:
                    with torch.no_grad():
                        self.num_batches_tracked.add_(1)
                        m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                        self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                        self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1)).clamp_min(0), alpha=m)
                out = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
                if self.affine:
                    out = out * self.weight.view(shape) + self.bias.view(shape)
                return out

        _GLOBAL_BN = GlobalBatchNorm2d
    return _GLOBAL_BN


def launch_local(nproc: int, argv: Sequence[str]) -> None:
    """Run ``python -m resnet_hub ARGV`` as ``nproc`` processes on this machine, as ``torchrun --standalone
    --nproc-per-node NPROC -m resnet_hub ARGV`` would (torch.distributed's own launcher, started in-process).

    Raises TrainingError naming the first process that failed and how (exit code or signal); that process has
    printed its own message already.
    """
    import signal

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as torchrun does: N processes must not each take every core
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1,
                          start_method="spawn")
    try:
        elastic_launch(config, sys.executable)("-m", "resnet_hub", *argv)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        code = failure.exitcode
        if code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        raise TrainingError(f"Training process rank {rank} (pid {failure.pid}) {how}; the other processes were "
                            "stopped. Its own message, if it could print one, is above.") from None
