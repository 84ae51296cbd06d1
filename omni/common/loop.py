"""The training loop every component trainer shares, in torchtune's shape: set up (resume the
checkpoint, the random generators and the lr schedule), train (one ``step`` per iteration),
save a checkpoint on a cadence. The trainer keeps its own forward, loss and optimizer steps,
so each one still reads top to bottom::

    loop = TrainLoop(checkpoint, steps, {"model": model}, {"model": optimizer},
                     schedule=warmup_stable_decay(100, 0, steps), rngs={"data": rng})
    for step in loop:            # resumes at the saved step; sets this step's learning rate
        loss = ...; loss.backward(); optimizer.step()
        loop.log(loss=loss.item())

Hand-written: torchtune's recipes are full programs and ``accelerate``/Lightning loops hide
the step; none resumes this checkpoint format (``omni.common.checkpoint``).
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from omni.common.checkpoint import load_training_state, save_training_state, training_extra
from omni.common.schedule import Schedule

Generator = random.Random | torch.Generator


class TrainLoop:
    """Steps ``start .. steps - 1`` of a resumable run.

    ``checkpoint``: the folder of the resumable state (None: none is written). ``schedule``
    drives the lr of the optimizers named in ``scheduled`` (default: all). ``rngs``: random
    generators whose state is saved and restored with the checkpoint. ``on_checkpoint(step)``
    runs at each checkpoint, after the state is written (e.g. to save the model itself, or,
    with no ``checkpoint`` folder, to write a checkpoint of the caller's own format). The
    cadence is every ``checkpoint_every`` steps (0: none) and after the last step. ``start``:
    the step a caller that resumed its own checkpoint continues from (then ``checkpoint`` is
    not read). ``notes``: plain JSON the caller keeps with the checkpoint (e.g. each step's
    loss), restored into ``loop.notes`` on resume, so the run's record survives a restart.
    """

    def __init__(
        self,
        checkpoint: str | Path | None,
        steps: int,
        modules: dict[str, nn.Module],
        optimizers: dict[str, torch.optim.Optimizer],
        *,
        schedule: Schedule | None = None,
        scheduled: tuple[str, ...] | None = None,
        rngs: dict[str, Generator] | None = None,
        checkpoint_every: int = 0,
        on_checkpoint: Callable[[int], None] | None = None,
        desc: str = "training",
        progress: bool = True,
        start: int | None = None,
        notes: dict[str, Any] | None = None,
    ) -> None:
        if steps < 1:
            raise ValueError(f"steps must be positive, got {steps}")
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.steps, self.modules, self.optimizers = steps, modules, optimizers
        self.rngs = dict(rngs or {})
        self.checkpoint_every, self.on_checkpoint = checkpoint_every, on_checkpoint
        self.desc, self.progress = desc, progress
        self.notes = dict(notes or {})
        self.start = self._resume() if start is None else start
        names = tuple(optimizers) if scheduled is None else scheduled
        self.schedulers = {n: schedule(optimizers[n], self.start) for n in names if schedule}
        self.bar: tqdm | None = None

    def _resume(self) -> int:
        if self.checkpoint is None:
            return 0
        start = load_training_state(self.checkpoint, self.modules, self.optimizers)
        extra = training_extra(self.checkpoint)
        self.notes.update(extra.get("notes", {}))
        states = extra.get("rngs", {})
        for name, generator in self.rngs.items():
            if name in states:
                _set_state(generator, states[name])
        return start

    def __iter__(self) -> Iterator[int]:
        self.bar = tqdm(
            range(self.start, self.steps),
            initial=self.start,
            total=self.steps,
            desc=self.desc,
            disable=not self.progress,
        )
        for step in self.bar:
            yield step
            done = step + 1
            if done == self.steps or (self.checkpoint_every and done % self.checkpoint_every == 0):
                self.save_checkpoint(done)
            with warnings.catch_warnings():
                # an optimizer that does not step yet (a GAN's discriminator before it joins)
                # still follows the curve; torch warns about that order once
                warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step")
                for scheduler in self.schedulers.values():
                    scheduler.step()

    def lr(self, name: str | None = None) -> float:
        """The learning rate of optimizer ``name`` (default: the first) at this step."""
        optimizer = self.optimizers[name or next(iter(self.optimizers))]
        return optimizer.param_groups[0]["lr"]

    def log(self, **metrics: Any) -> None:
        """Show this step's metrics on the progress bar (floats to 4 digits)."""
        if self.bar is not None:
            self.bar.set_postfix(
                {k: f"{v:.4g}" if isinstance(v, float) else v for k, v in metrics.items()}
            )

    def save_checkpoint(self, step: int) -> None:
        """Write the resumable state at ``step`` (into ``checkpoint``, if any), then run
        ``on_checkpoint``."""
        if self.checkpoint is not None:
            rngs = {name: _get_state(generator) for name, generator in self.rngs.items()}
            extra = {"rngs": rngs, "notes": self.notes}
            save_training_state(self.checkpoint, step, self.modules, self.optimizers, extra=extra)
        if self.on_checkpoint is not None:
            self.on_checkpoint(step)


def _get_state(generator: Generator) -> Any:
    if isinstance(generator, torch.Generator):
        return generator.get_state().tolist()
    return generator.getstate()


def _set_state(generator: Generator, state: Any) -> None:
    if isinstance(generator, torch.Generator):
        generator.set_state(torch.tensor(state, dtype=torch.uint8))
    else:  # random.Random state after a JSON round trip: lists back to tuples
        version, internal, gauss = state
        generator.setstate((version, tuple(internal), gauss))
