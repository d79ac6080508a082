"""A stand-in stage for tests/test_warm_stages.py, in two roles.

    python -m tests.warm_target call SOCKET DVC_PID DVC_STARTED ARGS...   # a stage command handing ARGS to the host
    python -m tests.warm_target give-up SOCKET DVC_PID DVC_STARTED ARGS... # one that leaves before the host answers
    (run by the host as __main__ with ARGS)                               # the "stage"

The stage prints what a fresh process would see, then: `exit N` exits with N, `wait` waits for Ctrl-C
(after printing "waiting"), `env NAME` prints that variable, `touch PATH` creates that file.
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
    if args[:1] == ["touch"]:
        open(args[1], "w").close()
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


def give_up(socket_path: str, dvc: tuple[int, float], args: list[str]) -> int:
    """Send the request, then go away before the host answers (as a caller whose wait ran out)."""
    import socket

    from flows import warm_stages

    caller = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    caller.connect(socket_path)
    warm_stages._send(caller, warm_stages._request("tests.warm_target", args, dvc), fds=[0, 1, 2])
    caller.close()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["give-up"]:
        sys.exit(give_up(sys.argv[2], (int(sys.argv[3]), float(sys.argv[4])), sys.argv[5:]))
    if sys.argv[1:2] == ["call"]:
        sys.exit(call(sys.argv[2], (int(sys.argv[3]), float(sys.argv[4])), sys.argv[5:]))
    sys.exit(stage(sys.argv[1:]))
