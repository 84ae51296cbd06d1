"""The aspect ratios an image answer may have: one list for the vocabulary and the decoder.

Each name is ``width:height``; its ratio token is ``<|ratio_name|>`` and the image decoder sizes
its output from the proportions. The order is the order the ratio tokens were added to the
vocabulary: new ratios go at the end, so existing checkpoints keep their token ids.
"""

from __future__ import annotations

ASPECT_RATIOS: dict[str, tuple[int, int]] = {
    "1:1": (1, 1),
    "4:3": (4, 3),
    "3:4": (3, 4),
    "16:9": (16, 9),
    "9:16": (9, 16),
    "3:2": (3, 2),
    "2:3": (2, 3),
}


def ratio_token(ratio: str) -> str:
    """The special token that names ``ratio`` in a discrete image block."""
    return f"<|ratio_{ratio}|>"
