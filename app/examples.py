"""The demo's clickable examples: one per direction, over small files in ``assets/examples``.

The files are made once from the toy world (``python -m app.examples``) and committed; the
demo only reads them, so it never needs espeak-ng or the world's code at run time.
"""

from __future__ import annotations

from pathlib import Path

from omni.resources import missing_shipped, shipped_path

EXAMPLES_DIR = shipped_path("assets/examples")  # the checkout's, or the wheel's copy
SCENE = EXAMPLES_DIR / "scene.png"
SENTENCE = EXAMPLES_DIR / "sentence.wav"
QUESTION = EXAMPLES_DIR / "question.wav"

# The prompts follow the toy world's task wording (training.toyworld.language.PROMPTS), so a
# model trained on the world recognises them.
CAPTION_PROMPT = "Describe the image."
DRAW_SENTENCE = "a big red circle on the left and a small blue square on the right"
SPOKEN_SENTENCE = "the blue square is on the right"
SPOKEN_QUESTION = "what colour is the shape on the left?"


def example_rows(voices: list[str], out_modalities: list[str]) -> list[tuple[str, list]]:
    """(label, row) pairs for ``gr.Examples`` over (message, output modality, voice).

    ``voices`` are the model's named voices; the spoken examples use the last one, to show
    choosing a voice other than the default. Rows whose output the model cannot produce are
    left out.
    """
    if not SCENE.is_file():
        raise missing_shipped("assets/examples", "the demo's example files")
    voice = voices[-1] if voices else None
    rows = [
        ("Caption an image", {"text": CAPTION_PROMPT, "files": [str(SCENE)]}, "text"),
        ("Draw a sentence", {"text": f"Draw this: {DRAW_SENTENCE}", "files": []}, "image"),
        ("Transcribe a clip", {"text": "Transcribe the audio.", "files": [str(SENTENCE)]}, "text"),
        (
            f"Speak a sentence in voice {voice}",
            {"text": f"Say this aloud: {SPOKEN_SENTENCE}", "files": []},
            "audio",
        ),
        (
            "Spoken question about an image",
            {"text": "Answer the spoken question aloud.", "files": [str(SCENE), str(QUESTION)]},
            "audio",
        ),
    ]
    return [
        (label, [message, mode, voice]) for label, message, mode in rows if mode in out_modalities
    ]


def make_example_files(folder: Path = EXAMPLES_DIR) -> list[Path]:
    """Render the example scene (64 px) and speak the two clips with espeak-ng (16 kHz)."""
    from training.toyworld.scenes import ObjectAttrs, Scene, render_scene
    from training.toyworld.speech import GENERATION_VOICES, SpeechRenderer

    folder.mkdir(parents=True, exist_ok=True)
    scene = Scene.from_attributes(
        [
            ObjectAttrs("circle", "red", "big", "left"),
            ObjectAttrs("square", "blue", "small", "right"),
        ]
    )
    render_scene(scene, 64).save(folder / SCENE.name, format="PNG", optimize=True)
    renderer, voice = SpeechRenderer(), GENERATION_VOICES["en"][0]
    renderer.write(folder / SENTENCE.name, SPOKEN_SENTENCE, voice)
    renderer.write(folder / QUESTION.name, SPOKEN_QUESTION, voice)
    return [folder / SCENE.name, folder / SENTENCE.name, folder / QUESTION.name]


if __name__ == "__main__":
    for path in make_example_files():
        print(f"{path} ({path.stat().st_size} bytes)")
