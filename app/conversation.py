"""Between Gradio's chat values and Omni's chat format.

Gradio hands the chat box a ``{"text": str, "files": [paths]}`` message and the chatbot its
history as messages whose content is a list of ``{"type": "text"}`` / ``{"type": "file"}``
items. Omni takes ``[{"role": ..., "content": [text or file path, ...]}]`` and recognises
each file (image, audio, video) by its content.
"""

from __future__ import annotations

from typing import Any

# The system prompt the toy world's data is written with (training.toyworld.language).
SYSTEM_PROMPT = "You are a helpful assistant."
# Earlier messages kept in the prompt: the last four exchanges fit the micro models' context
# with their images and clips.
MAX_HISTORY_MESSAGES = 8


def parse_message(message: dict[str, Any] | str | None) -> tuple[str, list[str]]:
    """The chat box value as (text, file paths); an empty message is an error."""
    if isinstance(message, str):
        message = {"text": message, "files": []}
    message = message or {}
    files = [_file_path(item) for item in message.get("files") or []]
    text = (message.get("text") or "").strip()
    if not text and not files:
        raise ValueError("the message is empty: type something or attach a file")
    return text, files


def _file_path(item: Any) -> str:
    return item if isinstance(item, str) else item["path"]


def display_message(role: str, text: str, files: list[str]) -> dict[str, Any]:
    """A chatbot message: ``files`` are shown as media (images inline, audio as a player)."""
    content: list[Any] = [{"path": path} for path in files]
    if text or not content:  # an answer still streaming shows as an empty bubble
        content.append(text)
    return {"role": role, "content": content}


def to_omni_chat(
    history: list[dict[str, Any]],
    text: str,
    files: list[str],
    system: str | None = SYSTEM_PROMPT,
) -> list[dict[str, Any]]:
    """The recent history plus the new user turn (its files first, then its text: the order
    of the training data), as the chat ``omni.generate`` takes."""
    chat = [{"role": "system", "content": system}] if system and system.strip() else []
    for message in history[-MAX_HISTORY_MESSAGES:]:
        content = [_omni_item(item) for item in _content_list(message["content"])]
        content = [item for item in content if item]
        if content and message["role"] in ("user", "assistant"):
            chat.append({"role": message["role"], "content": content})
    chat.append({"role": "user", "content": files + ([text] if text else [])})
    return chat


def _content_list(content: Any) -> list[Any]:
    return content if isinstance(content, list) else [content]


def _omni_item(item: Any) -> str | None:
    """Text stays text, a shown file becomes its path; other components are display only."""
    if isinstance(item, str):
        return item or None
    if item.get("type") == "text":
        return item["text"] or None
    if item.get("type") == "file":
        return item["file"]["path"]
    if "path" in item:
        return item["path"]
    return None
