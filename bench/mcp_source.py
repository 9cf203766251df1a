"""The fake MCP server (``tests/support/mcp_fake.py``) in its own process, for the MCP benchmarks.

Prints its URL, then obeys stdin: ``go N RATE`` emits N ``notifications/message`` at RATE/s
(each carrying its ``time.time()`` send stamp as ``params.t``) to every session; ``stop``
(or stdin closing) ends it.

    python bench/mcp_source.py [--anonymous-get]
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import sys
import time

from benchlib import ensure_repo_on_path

ensure_repo_on_path()

from tests.support.mcp_fake import FakeMcp  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--anonymous-get", action="store_true")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    fake = FakeMcp()
    fake.record_requests = False
    fake.anonymous_get = args.anonymous_get
    fake.start()
    print(fake.url, flush=True)
    try:
        for line in sys.stdin:
            parts = line.split()
            if not parts or parts[0] == "stop":
                break
            if parts[0] == "go":
                n, rate = int(parts[1]), float(parts[2])
                start = time.perf_counter()
                for i in range(n):
                    wait = start + i / rate - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                    fake.notify(params={"t": time.time(), "n": i})
                print("done", flush=True)
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
