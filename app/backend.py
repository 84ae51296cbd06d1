"""The demo's two handlers over one pipeline: the streaming chat and the one-shot ``/generate``,
whose requests that arrive together are answered in one batch (``app.batching``).

Bad input reaches the page with the pipeline's own ``ValueError`` message (a warning in the
chat, which is left as it was before the failed turn; ``gr.Error`` from the API); the server
keeps running.
"""

from __future__ import annotations

import html
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import soundfile
from PIL import Image as PILImage

from app.batching import RequestBatcher
from app.conversation import SYSTEM_PROMPT, display_message, parse_message, to_omni_chat
from omni.inputs import to_sample
from omni.pipeline import GenerationResult, OmniPipeline

EMPTY_BOX = {"text": "", "files": []}


@dataclass(frozen=True)
class Settings:
    """The per-turn controls, in the order the page passes them to the handlers."""

    out_modality: str = "text"
    voice: str | None = None
    voice_clip: str | None = None
    temperature: float = 0.0
    max_new_tokens: int = 256
    steps: int = 8
    guidance: float = 2.0
    think: bool = False
    system: str = SYSTEM_PROMPT

    def options(self) -> dict[str, Any]:
        """Keyword options for ``OmniPipeline.generate`` / ``stream``."""
        options: dict[str, Any] = {
            "temperature": float(self.temperature),
            "max_new_tokens": int(self.max_new_tokens),
            "steps": int(self.steps),
            "guidance": float(self.guidance),
            "think": bool(self.think),
        }
        voice = self.voice_clip or self.voice  # a reference clip, when given, wins
        if self.out_modality in ("audio", "auto") and voice:
            options["voice"] = voice
        return options


class DemoBackend:
    """Runs chat turns and API requests on ``pipe``. Chat answers are written to a temporary
    folder (removed with the backend) so that the page can show them and offer downloads.
    API requests arriving within ``window`` seconds of each other go through one
    ``generate_batch`` call, up to ``max_batch`` (``RequestBatcher``); chat turns stream, one
    ``stream`` each."""

    def __init__(self, pipe: OmniPipeline, max_batch: int = 8, window: float = 0.05) -> None:
        self.pipe = pipe
        self.batcher = RequestBatcher(pipe, max_batch, window)
        self._output = tempfile.TemporaryDirectory(prefix="omni-demo-")
        self.output_dir = Path(self._output.name)

    def chat(
        self, message: dict[str, Any], history: list[dict[str, Any]] | None, *settings: Any
    ) -> Iterator[tuple[Any, Any, Any, Any]]:
        """One chat turn, streamed: yields (chat history, chat box, live audio, downloads)."""
        config = Settings(*settings)
        history = list(history or [])
        try:
            text, files = parse_message(message)
            sample = to_sample(to_omni_chat(history, text, files, config.system))
            shown = history + [
                display_message("user", text, files),
                display_message("assistant", "", []),
            ]
            yield shown, EMPTY_BOX, None, None
            answer = ""
            for event in self.pipe.stream(sample, config.out_modality, **config.options()):
                if event.kind == "text":
                    answer += event.text
                    shown[-1] = display_message("assistant", answer, [])
                    yield shown, gr.skip(), gr.skip(), gr.skip()
                elif event.kind == "audio":
                    yield gr.skip(), gr.skip(), _pcm16(event.audio), gr.skip()
                elif event.kind == "done":
                    media, downloads = self._save(event.result)
                    shown[-1] = display_message("assistant", event.result.text, media)
                    yield shown, gr.skip(), gr.skip(), downloads
        except ValueError as error:
            # A warning, not gr.Error: the conversation stays in view, only this turn is undone
            # and the message goes back into the box for the user to fix.
            gr.Warning(html.escape(_readable(error, message)), title="Could not answer")
            yield history, message, None, gr.skip()

    def generate(
        self,
        prompt: str,
        files: list[str] | None = None,
        out_modality: str = Settings.out_modality,
        voice: str | None = None,
        voice_clip: str | None = None,
        temperature: float = Settings.temperature,
        max_new_tokens: int = Settings.max_new_tokens,
        steps: int = Settings.steps,
        guidance: float = Settings.guidance,
        think: bool = Settings.think,
        system: str = Settings.system,
    ) -> tuple[str, PILImage.Image | None, tuple[int, Any] | None]:
        """The ``/generate`` endpoint: one request -> (text, image or None, audio or None).

        Named parameters, because they are the endpoint's parameter names in the API docs.
        """
        config = Settings(
            out_modality,
            voice,
            voice_clip,
            temperature,
            max_new_tokens,
            steps,
            guidance,
            think,
            system,
        )
        try:
            text, files = parse_message({"text": prompt, "files": files or []})
            chat = to_omni_chat([], text, files, config.system)
            result = self.batcher.generate(chat, config.out_modality, **config.options())
        except ValueError as error:
            raise gr.Error(_readable(error, {"files": files})) from error
        audio = None if result.audio is None else _pcm16(result.audio)
        return result.text, result.image, audio

    def _save(self, result: GenerationResult) -> tuple[list[str], list[str]]:
        """Write an answer's image and audio (shown in the chat) and its text (download)."""
        folder = self.output_dir / uuid.uuid4().hex
        folder.mkdir(parents=True)
        media = []
        for index, image in enumerate(result.images):
            media.append(str(folder / f"answer-{index}.png"))
            image.save(media[-1], format="PNG")
        for index, audio in enumerate(result.audios):
            media.append(str(folder / f"answer-{index}.wav"))
            rate, samples = _pcm16(audio)
            soundfile.write(media[-1], samples, rate, subtype="PCM_16")
        downloads = list(media)
        if result.text:
            (folder / "answer.txt").write_text(result.text, encoding="utf-8")
            downloads.insert(0, str(folder / "answer.txt"))
        return media, downloads


def _pcm16(audio: tuple[int, np.ndarray]) -> tuple[int, np.ndarray]:
    """16-bit samples, which gradio writes as they are (it warns on every float chunk)."""
    rate, wave = audio
    return rate, (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16)


def _readable(error: ValueError, message: dict[str, Any] | None) -> str:
    """The pipeline's message, naming uploads by their file name, not the server's copy."""
    text = str(error)
    for item in (message or {}).get("files") or []:
        path = item if isinstance(item, str) else item["path"]
        text = text.replace(path, Path(path).name)
    return text
