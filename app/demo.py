"""The Gradio page: a multimodal chat over one Omni pipeline, plus the ``/generate`` API.

Layout only; what each turn does lives in ``app.backend``, the chat format in
``app.conversation`` and the examples in ``app.examples``.
"""

from __future__ import annotations

import gradio as gr

from app.backend import DemoBackend, Settings
from app.examples import EXAMPLES_DIR, example_rows
from omni.pipeline import OUT_MODALITIES, OmniPipeline

MAX_FILE_SIZE = "20mb"  # uploads above this are refused by the server before they reach us
QUEUE_SIZE = 64  # requests waiting beyond this are turned away with "queue full"
MEDIA_TYPES = ["image", "audio", "video"]

HEADER = """# Omni: any-to-any chat
Type, attach files ({media}), or record from the microphone. Choose what the answer
should be (text, an image, speech, or let the model decide) and, for speech, a voice or a
reference clip to clone. Every answer can be downloaded. Programmatic use: the `/generate`
endpoint (see "Use via API" at the bottom of the page).
"""


def build_demo(
    pipe: OmniPipeline,
    model_name: str = "Omni",
    defaults: Settings | None = None,
    max_batch: int = 8,
) -> gr.Blocks:
    """One Blocks app over ``pipe``, its controls starting at ``defaults``; serve it with
    ``launch``. ``/generate`` requests that arrive together run as one batch of up to
    ``max_batch``."""
    out_modalities = [m for m in OUT_MODALITIES if m in ("text", "auto") or m in pipe.decoders]
    voices = list(pipe.decoders["audio"].config.speakers) if "audio" in pipe.decoders else []
    media = [kind for kind in MEDIA_TYPES if kind in pipe.processor.encoders]  # what it can read
    backend = DemoBackend(pipe, max_batch)
    defaults = defaults or Settings()
    with gr.Blocks(title=f"Omni demo: {model_name}", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(HEADER.format(media=", ".join(media) or "none") + f"\nModel: `{model_name}`")
        with gr.Row():
            with gr.Column(scale=3):
                with gr.Tab("Chat"):
                    chatbot = gr.Chatbot(label="Conversation", height=400, elem_id="chat")
                    box = gr.MultimodalTextbox(
                        sources=["upload", "microphone"],
                        file_types=media,
                        file_count="multiple",
                        placeholder="Ask something, attach media, or record a question",
                        show_label=False,
                        elem_id="chat-box",
                    )
                    live_audio = gr.Audio(
                        label="Spoken answer (live)",
                        streaming=True,
                        autoplay=True,
                        interactive=False,
                        visible=bool(voices),
                    )
                    downloads = gr.File(
                        label="Download the last answer",
                        file_count="multiple",
                        interactive=False,
                        elem_id="downloads",
                    )
                    new_chat = gr.Button("New conversation", size="sm")
                with gr.Tab("Single request (API /generate)"):
                    prompt = gr.Textbox(label="Prompt", elem_id="api-prompt")
                    files = gr.File(
                        label="Files",
                        file_count="multiple",
                        type="filepath",
                        file_types=media,
                    )
                    run = gr.Button("Generate", variant="primary")
                    answer_text = gr.Textbox(label="Text answer")
                    answer_image = gr.Image(label="Image answer", type="pil", format="png")
                    answer_audio = gr.Audio(label="Audio answer", format="wav")
            with gr.Column(scale=1):
                out_modality = gr.Radio(
                    out_modalities, value=defaults.out_modality, label="Answer with", elem_id="mode"
                )
                voice = gr.Dropdown(
                    voices,
                    value=defaults.voice or (voices[0] if voices else None),
                    label="Voice",
                    visible=bool(voices),
                )
                voice_clip = gr.Audio(
                    label="...or a reference clip to clone",
                    type="filepath",
                    sources=["upload", "microphone"],
                    visible=bool(voices),
                )
                with gr.Accordion("Generation settings", open=False):
                    temperature = gr.Slider(
                        0,
                        1.5,
                        value=defaults.temperature,
                        step=0.05,
                        label="Temperature (0: greedy)",
                    )
                    max_new_tokens = gr.Slider(
                        1, 2048, value=defaults.max_new_tokens, step=1, label="Max new tokens"
                    )
                    steps = gr.Slider(1, 50, value=defaults.steps, step=1, label="Image steps")
                    guidance = gr.Slider(
                        0, 10, value=defaults.guidance, step=0.5, label="Image guidance"
                    )
                    think = gr.Checkbox(value=defaults.think, label="Think before answering")
                    system = gr.Textbox(value=defaults.system, label="System prompt")
        # The order of Settings' fields.
        settings = [
            out_modality,
            voice,
            voice_clip,
            temperature,
            max_new_tokens,
            steps,
            guidance,
            think,
            system,
        ]
        box.submit(
            backend.chat,
            [box, chatbot, *settings],
            [chatbot, box, live_audio, downloads],
            api_visibility="private",
        )
        new_chat.click(
            lambda: ([], None, None),
            None,
            [chatbot, live_audio, downloads],
            api_visibility="private",
        )
        run.click(
            backend.generate,
            [prompt, files, *settings],
            [answer_text, answer_image, answer_audio],
            api_name="generate",
            api_description="Answer one request (text and files) with text, an image or audio.",
            concurrency_limit=max_batch,  # so that many can wait together for one batch
        )
        examples = example_rows(voices, out_modalities)
        gr.Examples(
            [row for _, row in examples],
            inputs=[box, out_modality, voice],
            example_labels=[label for label, _ in examples],
            label="Examples: click one, then press Enter",
        )
    return demo


def launch(
    demo: gr.Blocks,
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    concurrency: int = 2,
    block: bool = True,
) -> str:
    """Serve ``demo`` on ``host:port`` (loopback unless told otherwise) with a bounded queue;
    returns the local URL. ``block=False`` returns at once and serves from a thread.
    ``concurrency`` chat turns stream at once on the one shared pipeline (``/generate``
    requests batch instead: ``build_demo``'s ``max_batch``).
    """
    demo.queue(default_concurrency_limit=concurrency, max_size=QUEUE_SIZE)
    _, url, _ = demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=MAX_FILE_SIZE,
        allowed_paths=[str(EXAMPLES_DIR)],
        show_error=True,
        prevent_thread_lock=not block,
        quiet=not block,
    )
    return url
