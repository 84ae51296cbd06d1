"""One training loop for every stage: data, forward, loss, backward, step, log, checkpoint.

Runs plainly or under ``torchrun`` (DDP; ``fsdp=True`` shards with FSDP2 for models that do
not fit one device; gloo on CPU, nccl on GPU). A step consumes ``rows_per_step`` packed rows
as ``rows_per_step / micro_rows`` micro-batches; every rank builds the same micro-batches
from the same data state and trains on its share (``rank::world_size``), so the global batch,
and the loss, do not depend on the number of processes.

Checkpoints (``training.checkpoints``) hold the model, optimizer, RNG and data-sampler state;
the learning rate follows transformers' schedule from the step (``omni.common.schedule``), so
the scheduler state is the step. Metrics go to ``metrics.csv`` (``training.metrics``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from omni.common.loop import TrainLoop
from omni.processor import OmniProcessor
from training.checkpoints import (
    full_state_options,
    latest_checkpoint,
    load_checkpoint,
    remove_partial_checkpoints,
    save_checkpoint,
)
from training.curriculum import Recipe, apply_trainable
from training.data import CodeCache, DataSpec, Manifest, RowPacker, real_token_count
from training.metrics import MetricsLog

log = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    """How to run (not what to learn: that is the recipe)."""

    resume: bool = False
    bf16: bool = False
    fsdp: bool = False
    progress: bool = True
    on_error: str = "skip"
    tensorboard: bool = True


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Distributed:
    """Join the process group when launched by torchrun (gloo on CPU, nccl on GPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed(device=torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return Distributed(dist.get_rank(), dist.get_world_size(), device)


def build_packer(
    recipe: Recipe,
    manifests: dict[str, str],
    processor: OmniProcessor,
    cache: CodeCache | None,
    on_error: str = "skip",
) -> RowPacker:
    """The stage's mixture as a row packer over its named manifests."""
    sources, weights = [], []
    read: dict[str, Manifest] = {}  # each file read (and its issues reported) once
    for entry in recipe.mixture:
        if entry.manifest not in manifests:
            raise ValueError(
                f"recipe {recipe.name} reads manifest {entry.manifest!r}, which the curriculum "
                f"does not name (known: {sorted(manifests)}; add it with --data NAME=PATH)"
            )
        path = manifests[entry.manifest]
        if path not in read:
            read[path] = Manifest(path, on_error=on_error)
        source = read[path].select(entry.split, entry.tasks, entry.media)
        if not len(source):
            wanted = f"{entry.split} samples of tasks {entry.tasks} with media {entry.media}"
            if entry.optional:
                log.warning("%s: %s has no %s; that source is skipped", recipe.name, path, wanted)
                continue
            raise ValueError(f"{source.path} has no {wanted}")
        sources.append(source)
        weights.append(entry.weight)
    if not sources:
        raise ValueError(f"recipe {recipe.name}: no source of its mixture has samples")
    spec = DataSpec(
        sources,
        weights,
        recipe.sequence_length,
        loss_on=recipe.loss_on,
        media_mode=recipe.media_mode,
        think=recipe.think,
        seed=recipe.seed,
        lookahead=recipe.lookahead,
        cache=cache,
    )
    return RowPacker(spec, processor)


# --- the loop ----------------------------------------------------------------------------
def _optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.dim() >= 2 else no_decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": recipe.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=recipe.lr, betas=(0.9, 0.95), foreach=False)


def _wrap(model: nn.Module, env: Distributed, fsdp: bool) -> nn.Module:
    """DDP under torchrun; with ``fsdp``, FSDP2 (``fully_shard``) on every decoder layer and
    then the root (embeddings, head, MTP, encoders). ``fully_shard`` swaps each parameter for a
    sharded DTensor in place, so the optimiser must be built after this."""
    if fsdp:
        if env.world_size == 1:
            raise ValueError(
                "--fsdp shards the model over processes: launch under torchrun "
                "(e.g. torchrun --nproc_per_node 2 -m omni.cli train lm ... --fsdp)"
            )
        from torch.distributed.fsdp import fully_shard

        for layer in model.backbone.get_decoder().layers:
            fully_shard(layer)
        fully_shard(model)
        return model
    if env.world_size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    # Not every micro-batch uses every encoder (or the MTP block on 2-token rows).
    return DistributedDataParallel(model, find_unused_parameters=True)


def _is_fsdp(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def _gradient_sync(wrapped: nn.Module, sync: bool):
    """Skip the gradient all-reduce (DDP) / reduce-scatter (FSDP2) on all but the last
    micro-batch of a step; gradients accumulate locally until then."""
    if sync:
        return contextlib.nullcontext()
    if hasattr(wrapped, "no_sync"):
        return wrapped.no_sync()
    if _is_fsdp(wrapped):
        wrapped.set_requires_gradient_sync(False)

        @contextlib.contextmanager
        def resync():
            try:
                yield
            finally:
                wrapped.set_requires_gradient_sync(True)

        return resync()
    return contextlib.nullcontext()


def save_model(model: nn.Module, folder: str | Path, env: Distributed | None = None) -> None:
    """``save_pretrained`` on rank 0. Under FSDP2 every rank must call this: the full state
    dict is gathered (to rank 0's CPU) first."""
    env = env or Distributed()
    state = None
    if _is_fsdp(model):
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        state = get_model_state_dict(model, options=full_state_options())
    if env.main:
        model.save_pretrained(folder, state_dict=state)


def _all_reduce(values: torch.Tensor, env: Distributed) -> torch.Tensor:
    if env.world_size > 1:
        dist.all_reduce(values)
    return values


def total_loss(output: Any, mtp_scale: float, aux_coef: float) -> torch.Tensor:
    """The stage's loss: LM + ``mtp_scale`` x MTP + ``aux_coef`` x MoE balance (the weights
    are the recipe's, at this step; the model's config is left alone)."""
    loss = output.lm_loss
    if output.mtp_loss is not None:
        loss = loss + mtp_scale * output.mtp_loss
    if output.balance_loss is not None:
        loss = loss + aux_coef * output.balance_loss
    return loss


def train_stage(
    model: nn.Module,
    processor: OmniProcessor,
    recipe: Recipe,
    manifests: dict[str, str],
    out: str | Path,
    options: TrainOptions | None = None,
    cache: CodeCache | None = None,
    env: Distributed | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` for one stage; returns the logged metric rows of this run."""

    options = options or TrainOptions()
    env = env or setup_distributed()
    out = Path(out)
    checkpoints = out / "checkpoints"
    if env.main:
        checkpoints.mkdir(parents=True, exist_ok=True)
        remove_partial_checkpoints(checkpoints)
    n_micro = recipe.rows_per_step // recipe.micro_rows
    if n_micro % env.world_size:
        raise ValueError(
            f"{n_micro} micro-batches per step do not split over {env.world_size} processes"
        )
    aux_coef = recipe.moe_aux_loss_coef
    if aux_coef is None:
        aux_coef = model.config.moe_aux_loss_coef
    apply_trainable(model, recipe.trainable)
    model.to(env.device).train()
    balancer = model.enable_bias_balancing() if recipe.moe_bias_update else None
    if balancer is not None and "backbone" not in recipe.trainable:
        balancer = None  # routers are frozen with the backbone
    packer = build_packer(recipe, manifests, processor, cache, options.on_error)
    wrapped = _wrap(model, env, options.fsdp)
    optimizer = _optimizer(model, recipe)  # after _wrap: FSDP2 replaces the parameters

    start = 0
    found = latest_checkpoint(checkpoints) if options.resume else None
    if found is not None:
        state = load_checkpoint(found, model, optimizer)
        if state["recipe"] != recipe.name:
            raise ValueError(f"{found} is a checkpoint of {state['recipe']}, not {recipe.name}")
        packer.load_state_dict(state["data"])
        start = state["step"]
        if env.main:
            log.info("resumed %s from %s (step %d)", recipe.name, found, start)
    metrics = MetricsLog(out, start, options.tensorboard) if env.main else None
    pad = processor.layout.special_id("<|pad|>")
    autocast = torch.autocast(env.device.type, dtype=torch.bfloat16, enabled=options.bf16)
    rows: list[dict[str, float]] = []
    mtp_training = recipe.mtp_training()

    def checkpoint(step: int) -> None:  # collective under FSDP2: every rank calls it
        state = {
            "step": step,
            "recipe": recipe.name,
            "data": packer.state_dict(),
            "world_size": env.world_size,
        }
        save_checkpoint(checkpoints, model, optimizer, state, env, recipe.keep_checkpoints)

    loop = TrainLoop(
        None,
        recipe.steps,
        {},
        {"model": optimizer},
        schedule=recipe.lr_schedule(),
        checkpoint_every=recipe.checkpoint_every,
        on_checkpoint=checkpoint,
        desc=recipe.name,
        progress=options.progress and env.main,
        start=start,
    )
    for step in loop:
        began = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        mtp_scale = recipe.mtp_loss_scale(step)
        micro_batches = [packer.next_batch(recipe.micro_rows) for _ in range(n_micro)]
        mine = micro_batches[env.rank :: env.world_size]
        # loss, lm, mtp, balance (sums over micro-batches), real tokens
        totals = torch.zeros(5, dtype=torch.float64)
        for index, batch in enumerate(mine):
            last = index == len(mine) - 1
            with _gradient_sync(wrapped, last):
                with autocast:
                    output = wrapped(**batch.to(env.device).model_inputs(), **mtp_training)
                loss = total_loss(output, mtp_scale, aux_coef)
                (loss / len(mine)).backward()
            parts = (loss, output.lm_loss, output.mtp_loss, output.balance_loss)
            for slot, value in enumerate(parts):
                totals[slot] += 0.0 if value is None else float(value.detach())
            totals[4] += real_token_count(batch, pad)
        _all_reduce(totals, env)
        if recipe.grad_clip:
            torch.nn.utils.clip_grad_norm_(
                [p for p in model.parameters() if p.requires_grad], recipe.grad_clip
            )
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        imbalance = None
        if balancer is not None:
            for counts in balancer.counts.values():
                _all_reduce(counts, env)  # every rank applies the same global update
            imbalance = balancer.update().imbalance()
        elapsed = time.perf_counter() - began
        row = {
            "step": step + 1,
            "loss": float(totals[0] / n_micro),
            "lm_loss": float(totals[1] / n_micro),
            "mtp_loss": float(totals[2] / n_micro),
            "balance_loss": float(totals[3] / n_micro),
            "lr": lr,
            "mtp_scale": mtp_scale,
            "tokens": float(totals[4]),
            "tokens_per_s": float(totals[4]) / elapsed,
            "packing_ratio": packer.packing_ratio,
            "moe_imbalance": imbalance,
        }
        rows.append(row)
        if metrics is not None:
            metrics.write(row)
            loop.log(loss=row["loss"], tok_s=round(row["tokens_per_s"]))
    if metrics is not None:
        metrics.close()
    if packer.skipped and env.main:
        log.warning("%s skipped samples: %s", recipe.name, packer.skipped)
    return rows


@torch.no_grad()
def validation_loss(
    model: nn.Module,
    processor: OmniProcessor,
    manifest: str | Path,
    row_length: int,
    rows: int = 8,
    split: str = "validation",
    tasks: list[str] | None = None,
    loss_on: str = "assistant",
) -> float:
    """Mean LM loss over the first ``rows`` packed rows of a manifest split (fixed order)."""
    source = Manifest(manifest, split, tasks)
    spec = DataSpec([source], [1.0], row_length, loss_on=loss_on, lookahead=16)
    packer = RowPacker(spec, processor)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    batches = [packer.next_batch(1).to(device) for _ in range(rows)]
    losses = [float(model(**batch.model_inputs()).lm_loss) for batch in batches]
    model.train(was_training)
    return sum(losses) / len(losses)
