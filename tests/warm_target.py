"""A stand-in stage for tests/test_warm_stages.py, in two roles.

    python -m tests.warm_target call SOCKET DVC_PID DVC_STARTED ARGS...   # a stage command handing ARGS to the host
    (run by the host as __main__ with ARGS)                               # the "stage"

The stage prints what a fresh process would see, then: `exit N` exits with N, `wait` waits for Ctrl-C
(after printing "waiting"), `env NAME` prints that variable.
"""

from __future__ import annotations

import os
import sys
import time


def stage(args: list[str]) -> int:
    from flows import warm_stages

    print(f"stage pid={os.getpid()} cwd={os.getcwd()} copy={warm_stages.in_stage_copy} args={args}", flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    if args[:1] == ["env"]:
        print(f"{args[1]}={os.environ.get(args[1])}", flush=True)
    if args[:1] == ["wait"]:
        print("waiting", flush=True)
        time.sleep(60)
    return int(args[1]) if args[:1] == ["exit"] else 0


def call(socket_path: str, dvc: tuple[int, float], args: list[str]) -> int:
    from flows import warm_stages

    status = warm_stages._run_in_host(socket_path, warm_stages._request("tests.warm_target", args, dvc))
    if status is None:
        print("declined: ran it myself", flush=True)
        return stage(args)
    return status


if __name__ == "__main__":
    if sys.argv[1:2] == ["call"]:
        sys.exit(call(sys.argv[2], (int(sys.argv[3]), float(sys.argv[4])), sys.argv[5:]))
    sys.exit(stage(sys.argv[1:]))
