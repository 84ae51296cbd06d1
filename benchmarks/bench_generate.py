"""MTP speculative vs plain decoding and streaming audio latency: ``omni bench generate``,
its figures written beside this script (``bench_generate.json``) unless ``--out`` says where.

.venv/bin/python benchmarks/bench_generate.py [--train-steps 400] [--backbone micro-k-exaone]
.venv/bin/python benchmarks/bench_generate.py --model DIR  # a saved pipeline; a random one
    (``build_micro_pipeline().save_pretrained(DIR)``) has drafts that are never accepted
"""

import sys
from pathlib import Path

from omni.cli import main

if __name__ == "__main__":
    out = [] if "--out" in sys.argv else ["--out", str(Path(__file__).with_suffix(".json"))]
    sys.exit(main(["bench", "generate", *out, *sys.argv[1:]]))
