"""Streamed speech while an answer is decoded: units of an open audio block go to the vocoder's
chunked synthesis as they arrive, so the first audio comes before the last unit is decoded.

The decoding loop runs in the caller's thread (``OmniPipeline.stream`` consumes it); only the
vocoder's ``stream`` runs in a worker thread, because it pulls its unit chunks from an iterable
and would otherwise block the loop that produces them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from omni.vocab import VocabLayout

Chunk = tuple[int, np.ndarray]


class AudioStream:
    """Feeds tokens in; hands back the audio chunks synthesised so far."""

    def __init__(self, vocoder: Any, speaker: Any, layout: VocabLayout) -> None:
        self.vocoder, self.speaker, self.layout = vocoder, speaker, layout
        self.start = layout.special_id("<|daud_start|>")
        self.end = layout.special_id("<|daud_end|>")
        self.audio = layout.range_of("audio")
        self.units: queue.Queue | None = None
        self.chunks: queue.Queue = queue.Queue()
        self.workers: list[threading.Thread] = []
        self.errors: list[Exception] = []

    def feed(self, token: int) -> None:
        """One answer token: opens, fills or closes the vocoder stream of an audio block."""
        if token == self.start and self.vocoder is not None:
            self.close_block()
            self.units = queue.Queue()
            worker = threading.Thread(target=self._synthesise, args=(self.units,), daemon=True)
            worker.start()
            self.workers.append(worker)
        elif self.units is not None and token == self.end:
            self.close_block()
        elif self.units is not None and token in self.audio:
            self.units.put([token - self.audio.start])

    def ready(self) -> list[Chunk]:
        """The chunks synthesised since the last call (never waits)."""
        chunks = []
        while not self.chunks.empty():
            chunks.append(self.chunks.get())
        self._raise()
        return chunks

    def finish(self) -> Iterator[Chunk]:
        """Close an open block, wait for the vocoder, and yield what it still makes."""
        self.close_block()
        for worker in self.workers:
            worker.join()
        yield from self.ready()

    def close_block(self) -> None:
        if self.units is not None:
            self.units.put(None)
            self.units = None

    def _synthesise(self, units: queue.Queue) -> None:
        try:
            for wave in self.vocoder.stream(iter(units.get, None), speaker=self.speaker):
                self.chunks.put((self.vocoder.sample_rate, wave))
        except Exception as error:  # handed to the decoding thread, raised there
            self.errors.append(error)

    def _raise(self) -> None:
        if self.errors:
            raise self.errors[0]
