"""Run a server command under tracemalloc; SIGUSR1 dumps a snapshot (for ``bench/memory.py``).

``python -m bench.traced_serve SNAPSHOT_PREFIX -- manage.py serve --port N`` or
``... -- -m daphne bench.bare_asgi:app`` / ``... -- -m uvicorn ...``. Each SIGUSR1
writes ``SNAPSHOT_PREFIX.<k>`` (k = 0, 1, ...).
"""
import gc
import runpy
import signal
import sys
import tracemalloc

FRAMES = 12


def main() -> None:
    prefix, _, command = sys.argv[1], sys.argv[2], sys.argv[3:]
    tracemalloc.start(FRAMES)
    count = 0

    def dump(signum, frame):
        nonlocal count
        gc.collect()
        tracemalloc.take_snapshot().dump(f"{prefix}.{count}")
        count += 1

    signal.signal(signal.SIGUSR1, dump)
    if command[0] == "-m":
        sys.argv = command[1:]
        runpy.run_module(command[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = command
        runpy.run_path(command[0], run_name="__main__")


if __name__ == "__main__":
    main()
