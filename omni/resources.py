"""Where the shipped files are: the repository's ``assets/`` and ``configs/``, or their copies
installed with the wheel.

A source checkout (or an editable install) reads them beside the packages. A wheel has no
``assets/`` or ``configs/`` folder beside ``omni/``: ``pyproject.toml`` installs the files that
commands need at run time (the recipes, the demo's examples, the default model) as data files
under ``<prefix>/share/omni-kit/``, and this module looks there next. The large trained
tokenizers and decoders under ``assets/`` are not installed: commands take them as arguments,
so a wheel user passes a folder of their own (or of a checkout).
"""

from __future__ import annotations

import site
import sys
import sysconfig
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
DATA_FOLDER = Path("share") / "omni-kit"


def _installed_roots() -> list[Path]:
    """``<prefix>/share/omni-kit`` for the prefixes pip installs data files into."""
    prefixes = [sysconfig.get_path("data"), sys.prefix, site.getuserbase()]
    return [Path(prefix) / DATA_FOLDER for prefix in dict.fromkeys(prefixes)]


def shipped_path(relative: str) -> Path:
    """The shipped file or folder ``relative`` (e.g. ``"assets/examples"``): in the checkout if
    it is there, else where the wheel installed it. When neither has it, the checkout path
    (callers that need it raise ``missing_shipped``'s error)."""
    for root in (CHECKOUT, *_installed_roots()):
        if (root / relative).exists():
            return root / relative
    return CHECKOUT / relative


def missing_shipped(relative: str, what: str) -> FileNotFoundError:
    """The error for a shipped file that is in neither place, naming both."""
    places = ", ".join(str(root / relative) for root in (CHECKOUT, *_installed_roots()))
    return FileNotFoundError(
        f"{what} is missing: looked for {relative} in the source checkout and in the installed "
        f"data files ({places}). It ships in the repository's {relative}; from a wheel, "
        f"reinstall omni-kit, or run from a checkout of the repository."
    )
