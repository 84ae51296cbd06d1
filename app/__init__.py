"""The Gradio demo over omni.generate."""
