"""MTP speculative vs plain decoding and streaming audio latency: ``omni bench generate``.

.venv/bin/python benchmarks/bench_generate.py [--train-steps 400] [--backbone micro-k-exaone]
"""

import sys

from omni.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "generate", *sys.argv[1:]]))
