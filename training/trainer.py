"""One training loop for every stage: data, forward, loss, backward, step, log, checkpoint.

Runs plainly or under ``torchrun`` (DDP; ``fsdp=True`` shards with FSDP2 for models that do
not fit one device; gloo on CPU, nccl on GPU). A step consumes ``rows_per_step`` packed rows
as ``rows_per_step / micro_rows`` micro-batches; every rank builds the same micro-batches
from the same data state and trains on its share (``rank::world_size``), so the global batch,
and the loss, do not depend on the number of processes.

Checkpoints are folders written to a temporary name and renamed into place (never half
written): ``model.safetensors``, ``optimizer.safetensors`` + ``optimizer.json``,
``rng.safetensors`` and ``trainer.json`` (step, data-sampler state; the learning rate is a pure
function of the step, so the scheduler state is the step). Nothing is pickled. Under FSDP2
the model and optimiser states are gathered to full tensors on rank 0's CPU before writing
and scattered back to the shards on load, so a checkpoint is the same files whatever the
number of processes that wrote it.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn

from omni.processor import OmniProcessor
from training.curriculum import Recipe, apply_trainable
from training.data import CodeCache, DataSpec, Manifest, RowPacker, real_token_count

log = logging.getLogger(__name__)
METRICS = (
    "step",
    "loss",
    "lm_loss",
    "mtp_loss",
    "balance_loss",
    "lr",
    "mtp_scale",
    "tokens",
    "tokens_per_s",
    "packing_ratio",
    "moe_imbalance",
)


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
        source = read[path].select(entry.split, entry.tasks)
        if not len(source):
            raise ValueError(f"{source.path} has no {entry.split} samples of tasks {entry.tasks}")
        sources.append(source)
        weights.append(entry.weight)
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


# --- checkpoints -------------------------------------------------------------------------
def _full_options():
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    # The scheduler's ``initial_lr`` is not saved: a fresh optimizer (what DCP loads into)
    # has none, and the schedule rebuilds it from the recipe's peak on resume.
    groups = [{k: v for k, v in g.items() if k != "initial_lr"} for g in state["param_groups"]]
    tensors, plain = {}, {"state": {}, "param_groups": groups}
    for name, values in state["state"].items():
        plain["state"][name] = []
        for key, value in values.items():
            tensors[f"{name}::{key}"] = value.detach().cpu().contiguous()
            plain["state"][name].append(key)
    return tensors, plain


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> dict:
    state = {
        name: {key: tensors[f"{name}::{key}"] for key in keys}
        for name, keys in plain["state"].items()
    }
    return {"state": state, "param_groups": plain["param_groups"]}


def save_checkpoint(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    trainer_state: dict[str, Any],
    env: Distributed,
    keep: int = 2,
) -> Path | None:
    """Write ``folder/step-N`` atomically (temp folder, then rename) and point ``latest`` at it."""
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_state, optimizer_state = get_state_dict(model, optimizer, options=_full_options())
    if not env.main:
        return None
    final = folder / f"step-{trainer_state['step']:07d}"
    temporary = folder / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model_state.items()}, temporary / "model.safetensors")
    tensors, plain = _flatten_optimizer(optimizer_state)
    save_file(tensors, temporary / "optimizer.safetensors")
    (temporary / "optimizer.json").write_text(json.dumps(plain))
    save_file({"torch": torch.get_rng_state()}, temporary / "rng.safetensors")
    (temporary / "trainer.json").write_text(json.dumps(trainer_state, indent=1))
    if final.exists():
        shutil.rmtree(final)
    os.replace(temporary, final)
    pointer = folder / ".latest.tmp"
    pointer.write_text(final.name)
    os.replace(pointer, folder / "latest")
    for old in sorted(folder.glob("step-*"))[:-keep]:
        shutil.rmtree(old)
    return final


def remove_partial_checkpoints(folder: Path) -> list[Path]:
    """Delete the temporary folders a killed ``save_checkpoint`` left half-written; returns
    them. Only the process that writes checkpoints calls this, before it writes any."""
    partial = sorted(folder.glob(".tmp-step-*"))
    for path in partial:
        log.warning("removing the half-written checkpoint %s", path)
        shutil.rmtree(path)
    return partial


def latest_checkpoint(folder: Path) -> Path | None:
    pointer = folder / "latest"
    if not pointer.is_file():
        return None
    path = folder / pointer.read_text().strip()
    return path if path.is_dir() else None


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Restore model, optimiser and RNG state; returns the trainer state (step, data)."""
    from torch.distributed.checkpoint.state_dict import set_state_dict

    plain = json.loads((path / "optimizer.json").read_text())
    optimizer_state = _unflatten_optimizer(load_file(path / "optimizer.safetensors"), plain)
    set_state_dict(
        model,
        optimizer,
        model_state_dict=load_file(path / "model.safetensors"),
        optim_state_dict=optimizer_state,
        options=_full_options(),
    )
    torch.set_rng_state(load_file(path / "rng.safetensors")["torch"])
    return json.loads((path / "trainer.json").read_text())


# --- logging -----------------------------------------------------------------------------
class MetricsLog:
    """Rows of ``METRICS`` to ``metrics.csv`` (and TensorBoard); on resume, rows after the
    checkpoint's step are dropped, so the file reads as one uninterrupted run."""

    def __init__(self, folder: Path, resume_step: int, tensorboard: bool) -> None:
        self.path = folder / "metrics.csv"
        rows = []
        if resume_step and self.path.is_file():
            with self.path.open() as file:
                rows = [r for r in csv.DictReader(file) if int(r["step"]) <= resume_step]
        with self.path.open("w", newline="") as file:
            writer = csv.DictWriter(file, METRICS)
            writer.writeheader()
            writer.writerows(rows)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(folder / "tensorboard"))

    def write(self, row: dict[str, float]) -> None:
        with self.path.open("a", newline="") as file:
            csv.DictWriter(file, METRICS).writerow({k: row.get(k, "") for k in METRICS})
        if self.writer is not None:
            for key, value in row.items():
                if key != "step" and value is not None:
                    self.writer.add_scalar(key, value, int(row["step"]))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(folder: str | Path) -> list[dict[str, float]]:
    """The rows of a stage's ``metrics.csv`` as floats (empty fields dropped)."""
    with (Path(folder) / "metrics.csv").open() as file:
        return [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(file)]


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

        state = get_model_state_dict(model, options=_full_options())
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
    from tqdm import tqdm

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
    scheduler = recipe.lr_schedule()(optimizer, start)
    metrics = MetricsLog(out, start, options.tensorboard) if env.main else None
    pad = processor.layout.special_id("<|pad|>")
    autocast = torch.autocast(env.device.type, dtype=torch.bfloat16, enabled=options.bf16)
    rows: list[dict[str, float]] = []
    bar = tqdm(
        range(start, recipe.steps),
        initial=start,
        total=recipe.steps,
        desc=recipe.name,
        disable=not (options.progress and env.main),
    )
    for step in bar:
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
                    output = wrapped(**batch.to(env.device).model_inputs())
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
        scheduler.step()
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
            bar.set_postfix(loss=f"{row['loss']:.4f}", tok_s=f"{row['tokens_per_s']:.0f}")
        if (step + 1) % recipe.checkpoint_every == 0 or step + 1 == recipe.steps:
            state = {
                "step": step + 1,
                "recipe": recipe.name,
                "data": packer.state_dict(),
                "world_size": env.world_size,
            }
            save_checkpoint(checkpoints, model, optimizer, state, env, recipe.keep_checkpoints)
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
