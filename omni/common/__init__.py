"""Low shared helpers (persistence, schedules, audio and manifest reading) that ``encoders``,
``tokenizers_mm`` and ``decoders`` may import: nothing here imports the rest of ``omni``,
``training`` or ``app``."""
