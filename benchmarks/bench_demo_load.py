"""Load test of the demo: concurrent gradio_client sessions against one ``omni demo`` server.

    .venv/bin/python benchmarks/bench_demo_load.py [--model PATH] [--sessions 16] [--requests 3]

Starts ``omni demo`` in a subprocess on a free loopback port (on a saved random micro pipeline
unless ``--model`` is given), warms it up with one request of each kind, takes the server's
RSS, then opens ``--sessions`` clients at once, each sending ``--requests`` requests (cycling
text->text, image->text, text->audio). Prints p50/p95 latency and the server's RSS before,
at the peak of and after the burst. Exits 1 if a request failed or the RSS did not come back
within ``--rss-tolerance`` of its start.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from gradio_client import Client, handle_file  # noqa: E402

from app.examples import SCENE  # noqa: E402

REQUESTS = [
    ("text->text", {"prompt": "Tell me about the shapes.", "max_new_tokens": 16}),
    ("image->text", {"prompt": "Describe the image.", "files": [SCENE], "max_new_tokens": 16}),
    (
        "text->audio",
        {"prompt": "Say this aloud: hello", "out_modality": "audio", "max_new_tokens": 30},
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def micro_model(folder: Path) -> Path:
    from omni.presets import build_micro_pipeline

    build_micro_pipeline("micro-llama").save_pretrained(folder)
    return folder


def start_server(model: Path, port: int, concurrency: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "omni.cli", "demo", "--model", str(model), "--port", str(port)]
    command += ["--concurrency", str(concurrency)]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_until_up(url: str, server: subprocess.Popen, patience_s: float = 600) -> Client:
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the demo exited: {server.stderr.read().decode()[-2000:]}")
        try:
            return Client(url, verbose=False, analytics_enabled=False)
        except Exception:  # not listening yet
            time.sleep(1)
    raise RuntimeError(f"the demo did not come up within {patience_s} s")


def ask(client: Client, options: dict) -> float:
    options = dict(options)
    options["files"] = [handle_file(str(path)) for path in options.get("files", [])]
    start = time.perf_counter()
    text, image, audio = client.predict(api_name="/generate", **options)
    if not isinstance(text, str) or image is not None:
        raise RuntimeError(f"unexpected answer: {text!r}, {image!r}, {audio!r}")
    return time.perf_counter() - start


def session(url: str, index: int, requests: int) -> list[tuple[str, float | None, str]]:
    client = Client(url, verbose=False, analytics_enabled=False)
    results = []
    for number in range(requests):
        kind, options = REQUESTS[(index + number) % len(REQUESTS)]
        try:
            results.append((kind, ask(client, options), ""))
        except Exception as error:  # counted and reported, the burst goes on
            results.append((kind, None, f"{type(error).__name__}: {error}"))
    return results


class RssSampler:
    """Samples a process's resident memory in a thread; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        return self.process.memory_info().rss

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self.rss())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()


def settled_rss(sampler: RssSampler, start: int, tolerance: float, patience_s: float) -> int:
    """The RSS once it is back within tolerance, or the last value after ``patience_s``."""
    deadline = time.monotonic() + patience_s
    while True:
        rss = sampler.rss()
        if rss <= start * (1 + tolerance) or time.monotonic() > deadline:
            return rss
        time.sleep(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a saved model (default: a random micro one)")
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2, help="the server's concurrency limit")
    parser.add_argument("--rss-tolerance", type=float, default=0.10)
    parser.add_argument("--settle-s", type=float, default=30.0, help="wait for RSS to come back")
    parser.add_argument(
        "--out",
        default=str(Path(__file__).with_suffix(".json")),
        help="where the figures go (default: beside this script, committed)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="omni-load-") as scratch:
        model = args.model or micro_model(Path(scratch) / "micro")
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        server = start_server(model, port, args.concurrency)
        try:
            client = wait_until_up(url, server)
            for _, options in REQUESTS:  # touch every path once: caches, lazy imports
                ask(client, options)
            sampler = RssSampler(server.pid)
            start_rss = sampler.rss()
            began = time.perf_counter()
            with sampler, ThreadPoolExecutor(args.sessions) as pool:
                futures = [
                    pool.submit(session, url, index, args.requests)
                    for index in range(args.sessions)
                ]
                results = [item for future in futures for item in future.result()]
            burst_s = time.perf_counter() - began
            end_rss = settled_rss(sampler, start_rss, args.rss_tolerance, args.settle_s)
        finally:
            server.terminate()
            server.wait(timeout=30)

    latencies = np.array([seconds for _, seconds, _ in results if seconds is not None])
    errors = [(kind, error) for kind, seconds, error in results if seconds is None]
    growth = end_rss / start_rss - 1
    p50, p95 = np.percentile(latencies, [50, 95]).tolist() if len(latencies) else (None, None)
    print(f"sessions x requests: {args.sessions} x {args.requests} = {len(results)}")
    print(f"answered: {len(latencies)}, errors: {len(errors)}, burst: {burst_s:.1f} s")
    for kind, error in errors[:5]:
        print(f"  error ({kind}): {error}")
    if len(latencies):
        print(f"latency p50 {p50:.2f} s, p95 {p95:.2f} s, max {latencies.max():.2f} s")
        for kind, _ in REQUESTS:
            mine = [seconds for k, seconds, _ in results if k == kind and seconds is not None]
            if mine:
                print(f"  {kind}: n={len(mine)} p50 {np.percentile(mine, 50):.2f} s")
    mib = 2**20
    print(
        f"server RSS: start {start_rss / mib:.0f} MiB, peak {sampler.peak / mib:.0f} MiB, "
        f"after {end_rss / mib:.0f} MiB ({growth:+.1%}; tolerance {args.rss_tolerance:.0%})"
    )
    ok = not errors and growth <= args.rss_tolerance
    print("OK" if ok else "FAILED")
    figures = {
        "sessions": args.sessions,
        "requests_per_session": args.requests,
        "concurrency": args.concurrency,
        "answered": len(latencies),
        "errors": len(errors),
        "burst_s": round(burst_s, 2),
        "latency_p50_s": p50,
        "latency_p95_s": p95,
        "rss_mib": {
            "start": round(start_rss / mib),
            "peak": round(sampler.peak / mib),
            "after": round(end_rss / mib),
        },
        "ok": ok,
    }
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
