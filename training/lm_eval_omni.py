"""The text directions of the matrix through lm-evaluation-harness.

``omni`` is registered as an lm-eval model: transformers' ``HFLM`` over a pipeline folder
(``import omni`` makes it load with ``AutoModelForCausalLM``), with generation constrained to a
text answer by the model's own output constraint (``omni.hf.logits_processor``), as
``omni.generate(..., out_modality="text")`` does. The task YAMLs under ``configs/lm-eval/`` read
``{"prompt", "target"}`` JSONL, which :func:`export_text_directions` writes from a manifest split.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

import omni  # noqa: F401  (registers Omni with the transformers Auto classes)
from training.matrix import read_split
from training.matrix_scores import reference_text

# Task -> (the manifest task, the source language) of its samples.
TEXT_DIRECTIONS = {
    "omni_translate_en_ko": ("translate", "en"),
    "omni_translate_ko_en": ("translate", "ko"),
}


@register_model("omni")
class OmniLM(HFLM):
    """``HFLM`` whose generations are text answers (no image or audio blocks)."""

    def _model_generate(self, context, max_length: int, stop: list[str], **generation_kwargs):
        from omni.hf import logits_processor

        processors = logits_processor(self.model, "text", context.shape[1])
        return super()._model_generate(
            context, max_length, stop, logits_processor=processors, **generation_kwargs
        )


def _user_text(record: dict[str, Any]) -> str:
    user = next(t for t in record["turns"] if t["role"] == "user")
    return " ".join(s["text"] for s in user["segments"] if s["type"] == "text")


def export_text_directions(manifest: str | Path, split: str, out: str | Path) -> dict[str, Path]:
    """Write each text direction's samples of ``split`` as ``out/<direction>.jsonl``."""
    records = read_split(manifest, split)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (task, lang) in TEXT_DIRECTIONS.items():
        chosen = [r for r in records if r.get("task") == task and r["meta"].get("lang") == lang]
        path = out / f"{name.removeprefix('omni_')}.jsonl"
        with path.open("w", encoding="utf-8") as file:
            for record in chosen:
                line = {
                    "id": record["id"],
                    "prompt": _user_text(record),
                    "target": reference_text(record),
                }
                file.write(json.dumps(line, ensure_ascii=False) + "\n")
        paths[name] = path
    return paths


def task_config(yaml_path: Path, data_file: Path) -> dict[str, Any]:
    """A task YAML (its ``include`` merged under it, as lm-eval does) reading ``data_file``."""
    import yaml

    config = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    if "include" in config:
        config = {**task_config(yaml_path.parent / config.pop("include"), data_file), **config}
    config["dataset_kwargs"] = {"data_files": {"test": str(data_file)}}
    return config


def evaluate(
    model: str | Path, data_files: dict[str, Path], tasks_dir: Path, limit: int | None = None
) -> dict[str, Any]:
    """``lm_eval.simple_evaluate`` of the ``omni`` model on the given tasks, chat template on."""
    from lm_eval import simple_evaluate

    from training.toyworld.language import SYSTEM_PROMPT

    tasks = [task_config(tasks_dir / f"{name}.yaml", path) for name, path in data_files.items()]
    results = simple_evaluate(
        model="omni",
        model_args={"pretrained": str(model), "device": "cpu", "batch_size": 1},
        tasks=tasks,
        apply_chat_template=True,
        system_instruction=SYSTEM_PROMPT,
        limit=limit,
        log_samples=False,
    )
    return results["results"]
