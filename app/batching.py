"""The demo's request batcher: ``/generate`` requests that arrive together go through one
``OmniPipeline.generate_batch`` call.

Hand-written, because Gradio's own batching (``batch=True`` on the event) does not fit: it
fails every request of a batch when one raises, and a bad upload must fail alone, with its own
message. Here each caller waits on a future; one worker thread gathers what arrives within
``window`` seconds of the first request (or while the previous batch ran), up to
``max_batch``, and runs each group of requests with equal options as one batch. A group that
fails with a ``ValueError`` is answered one request at a time, so only the bad request sees
the error.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from omni.pipeline import GenerationResult, OmniPipeline


@dataclass
class _Request:
    chat: Any
    out_modality: str
    options: dict[str, Any]
    answer: Future = field(default_factory=Future)

    def group(self) -> tuple:
        """Requests batch together only when everything but their chat is equal."""
        return self.out_modality, tuple(sorted(self.options.items()))


class RequestBatcher:
    """Answers requests from many threads, batching those that arrive together."""

    def __init__(self, pipe: OmniPipeline, max_batch: int = 8, window: float = 0.05) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if window < 0:
            raise ValueError(f"window must be >= 0 seconds, got {window}")
        self.pipe, self.max_batch, self.window = pipe, max_batch, window
        self._waiting: queue.Queue[_Request | None] = queue.Queue()
        self._worker = threading.Thread(target=self._serve, name="omni-demo-batcher", daemon=True)
        self._worker.start()

    def generate(self, chat: Any, out_modality: str, **options: Any) -> GenerationResult:
        """Answer one request, as ``OmniPipeline.generate`` would; blocks until it is done and
        raises the request's own ``ValueError``."""
        request = _Request(chat, out_modality, options)
        self._waiting.put(request)
        return request.answer.result()

    def close(self) -> None:
        """Stop the worker once the requests already waiting are answered."""
        self._waiting.put(None)
        self._worker.join()

    def _serve(self) -> None:
        while (first := self._waiting.get()) is not None:
            gathered, stop = self._gather(first)
            groups: dict[tuple, list[_Request]] = {}
            for request in gathered:
                groups.setdefault(request.group(), []).append(request)
            for group in groups.values():
                self._answer(group)
            if stop:
                return

    def _gather(self, first: _Request) -> tuple[list[_Request], bool]:
        """``first`` and what arrives within the window, up to ``max_batch``; and whether
        ``close`` was called meanwhile."""
        gathered, deadline = [first], time.monotonic() + self.window
        while len(gathered) < self.max_batch:
            try:
                request = self._waiting.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                break
            if request is None:
                return gathered, True
            gathered.append(request)
        return gathered, False

    def _answer(self, group: Sequence[_Request]) -> None:
        first = group[0]
        try:
            results = self.pipe.generate_batch(
                [request.chat for request in group], first.out_modality, **first.options
            )
        except ValueError as error:
            if len(group) == 1:
                first.answer.set_exception(error)
            else:  # find the bad request: each alone gets its own answer or error
                for request in group:
                    self._answer([request])
            return
        except Exception as error:  # the callers must not wait forever
            for request in group:
                request.answer.set_exception(error)
            return
        for request, result in zip(group, results):
            request.answer.set_result(result)
