"""One save/load scheme for every trainable part (encoders, code tokenizers, decoders): a
folder of ``config.json`` (with the part's ``kind``) + ``model.safetensors``; loading never
unpickles.

Hand-written rather than built on ``huggingface_hub.PyTorchModelHubMixin``: the mixin rebuilds
a module from its ``__init__`` arguments (ours take nested configs and drop ``pretrained``
paths), loads with ``strict=False`` by default, falls back to ``torch.load`` of a
``pytorch_model.bin``, and writes a model card into every folder. diffusers' ``ConfigMixin``
would add ``_class_name`` keys and change the format of the folders shipped in ``assets/``.
The weights are the module's state dict in safetensors, loaded strictly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from safetensors.torch import load_file, save_file
from torch import nn

from omni.common.registry import resolve


class SavedModule(nn.Module):
    """A module saved as ``config.json`` + ``model.safetensors``.

    ``artifact`` is the registry table it belongs to (and names it in errors); ``kind`` is its
    entry there, written into config.json under ``kind_key``. ``Base.from_pretrained(folder)``
    on a base class rebuilds whichever registered subclass the folder holds.
    """

    artifact: ClassVar[str] = "model"
    kind: ClassVar[str] = ""
    kind_key: ClassVar[str] = "kind"

    def to_config(self) -> dict[str, Any]:
        """JSON-serialisable config that ``from_config`` rebuilds this module from."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SavedModule:
        raise NotImplementedError

    def saved_config(self) -> dict[str, Any]:
        """What config.json holds: the kind and ``to_config()``."""
        return {self.kind_key: self.kind, **self.to_config()}

    def save_pretrained(self, folder: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(self.saved_config(), indent=2) + "\n")
        # ``save_model`` would refuse buffers that view part of a storage (a mel window)
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"))

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> SavedModule:
        """Rebuild the module ``folder`` holds (a subclass of ``cls``), in eval mode."""
        config = read_config(folder, cls.artifact)
        weights = Path(folder) / "model.safetensors"
        if not weights.is_file():
            raise ValueError(f"{folder} is not a saved {cls.artifact}: no model.safetensors in it")
        kind = config.pop(cls.kind_key, None)
        target = resolve(cls.artifact, kind, folder)
        if not issubclass(target, cls):
            raise ValueError(f"{folder} holds a {target.__name__} ({kind!r}), not a {cls.__name__}")
        module = target.from_config(config)
        module.load_state_dict(load_file(str(weights)))
        return module.eval()


def read_config(folder: str | Path, artifact: str = "model") -> dict[str, Any]:
    """The ``config.json`` of a saved folder, or a ValueError saying it is missing."""
    config_file = Path(folder) / "config.json"
    if not config_file.is_file():
        raise ValueError(f"{folder} is not a saved {artifact}: no config.json in it")
    return json.loads(config_file.read_text())
