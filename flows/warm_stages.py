"""Warm stage processes for ``dvc repro``: a repro's stages start from a process that has already
imported Prefect, MLflow, pandas, scikit-learn, torch and the stage modules.

Under DVC each stage is its own ``python -m flows.<stage>`` process, and each spent 2.2-3.5 s importing
that stack before its own work (about the work of the whole report or score stage). So the repro's
supervisor (``flows.repro_server``) also starts a *stage host*: it imports the stack once, then listens on
a Unix socket in a private folder. A later stage's command, once its settings are checked
(``flows.cli.preflight``), sends the host its command line, working folder, environment and its
stdin/stdout/stderr, and waits. The host forks a copy of itself that runs the stage module as
``__main__`` with those arguments and streams, exactly as the command would have, and reports its exit
status, which the command exits with. Ctrl-C and SIGTERM sent to the command are passed on to the copy;
if the command dies, the copy is stopped.

The command runs the stage itself, as before, whenever the host could differ from a fresh process: a
different environment, interpreter, interpreter flags, ``sys.path`` or user; no host for this repro;
or ``EXEMPLAR_WARM_STAGES=0``. The host refuses to serve if importing the stack started a Python thread
(a fork would copy that thread's locks); the native pools numpy's OpenBLAS and Arrow's jemalloc start at
import are fork-aware (``pthread_atfork``), as multiprocessing's fork start method and PyTorch's DataLoader
workers rely on. The host runs no torch operation, so no OpenMP pool exists when it forks. Each stage it ran is a line in ``$PREFECT_HOME/repro-servers/stages.log``.

    python -m flows.warm_stages --socket PATH --watch PID --started T   # the host (the supervisor starts it)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import sys
import time
from pathlib import Path

STAGE_MODULES = ("flows.ingest", "flows.filter", "flows.train", "flows.score", "flows.compress", "flows.report")
# What the stages import while they run, beyond their modules' own imports (the heavy part of each).
RUN_TIME_IMPORTS = ("mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store",
                    "torch._dynamo", "sklearn.ensemble", "sklearn.linear_model", "cleanlab.filter", "matplotlib.pyplot")
# Set per command, read by nothing at import time: the copy takes the command's values. `_` is the shell's
# record of the program it runs; DVC names the stage it runs in DVC_STAGE.
PER_COMMAND_VARIABLES = ("_", "DVC_STAGE")
HEADER = struct.Struct("!I")
ACCEPT_SECONDS = 1.0
CONNECT_SECONDS = 120  # a host still importing answers once it is done (a few seconds)

in_stage_copy = False  # True in a copy the host forked (it must not hand its stage on again)
_host_environ: dict[str, str] = {}  # the host's environment before it imported the stack


# --- the command's side --------------------------------------------------------------------------


def enabled(environ=None) -> bool:
    environ = os.environ if environ is None else environ
    return environ.get("EXEMPLAR_WARM_STAGES") != "0"


def delegate(module: str, argv: list[str]) -> None:
    """If this repro's stage host runs, run `module` there and exit with its status; otherwise return."""
    if in_stage_copy or not enabled() or module not in STAGE_MODULES:
        return
    from flows import repro_server

    if not repro_server.wanted():
        return
    from tasks.ancestry import dvc_ancestor

    ancestor = dvc_ancestor()
    host = _host_socket(repro_server.state_path(ancestor[0]), ancestor[1]) if ancestor else None
    if host is None:
        return
    status = _run_in_host(host, _request(module, argv, ancestor))
    if status is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def _host_socket(state: Path, started: float) -> str | None:
    try:
        recorded = json.loads(state.read_text())
    except (OSError, ValueError):
        return None
    if abs(recorded.get("started", 0) - started) > 1e-3:
        return None
    return recorded.get("stage_host")


def _request(module: str, argv: list[str], ancestor: tuple[int, float]) -> dict:
    return {"module": module, "argv": list(argv), "orig_argv": list(sys.orig_argv), "cwd": os.getcwd(),
            "environ": dict(os.environ), **_interpreter(), "dvc": list(ancestor)}


def _interpreter() -> dict:
    """What a fresh process's imports could depend on besides its environment."""
    return {"executable": sys.executable, "flags": list(sys.flags), "warnoptions": list(sys.warnoptions),
            "xoptions": {str(k): str(v) for k, v in sys._xoptions.items()}, "path": list(sys.path), "uid": os.getuid()}


def _run_in_host(path: str, request: dict) -> int | None:
    """The stage's exit status when the host ran it; None when the host declined or is not there."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.settimeout(CONNECT_SECONDS)
        connection.connect(path)
        _send(connection, request, fds=[0, 1, 2])
        first = _receive(connection)
    except (OSError, ValueError):
        connection.close()
        return None
    if first is None or "pid" not in first:
        connection.close()
        return None
    try:
        _send(connection, {"go": True})  # the copy starts only now: a caller that gave up never runs twice
    except OSError:
        return None
    connection.settimeout(None)
    return _wait_for_copy(connection, int(first["pid"]))


def _wait_for_copy(connection: socket.socket, pid: int) -> int:
    """Pass Ctrl-C / SIGTERM / SIGHUP on to the copy running the stage; return its exit status."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, lambda received, _frame: _forward(pid, received))
    try:
        last = _receive(connection)  # a signal handled meanwhile does not interrupt the wait (PEP 475)
    except (OSError, ValueError):
        last = None
    if last is None or "exit" not in last:
        print(f"exemplar: the stage process (pid {pid}) ended without reporting its status.", file=sys.stderr)
        return 1
    return int(last["exit"])


def _forward(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


# --- messages: a length-prefixed JSON object, the first one with the caller's file descriptors -------


def _send(connection: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    body = json.dumps(message).encode()
    if fds:
        socket.send_fds(connection, [HEADER.pack(len(body))], fds)
        connection.sendall(body)
    else:
        connection.sendall(HEADER.pack(len(body)) + body)


def _receive(connection: socket.socket, with_fds: int = 0) -> dict | None:
    """The next message (and, with `with_fds`, the descriptors sent with it); None at end of stream."""
    if with_fds:
        head, fds, _flags, _address = socket.recv_fds(connection, HEADER.size, with_fds)
        head += _exactly(connection, HEADER.size - len(head)) if head else b""
    else:
        head, fds = _exactly(connection, HEADER.size), []
    if len(head) < HEADER.size:
        return None
    body = _exactly(connection, HEADER.unpack(head)[0])
    message = json.loads(body)
    if with_fds:
        message["_fds"] = fds
    return message


def _exactly(connection: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = connection.recv(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# --- the host ------------------------------------------------------------------------------------


def serve(path: str, watch: tuple[int, float], modules: tuple[str, ...], preload: tuple[str, ...], log: Path | None) -> int:
    """Listen at `path`, import `preload` one module at a time, and fork one copy per request until the
    dvc process `watch` is gone. A request that comes while the stack is still importing is served at
    once, between two imports: its copy imports what is still missing itself, as a fresh process would."""
    import threading

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    started = time.monotonic()
    _host_environ.update(os.environ)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # copies are reaped by the kernel
    listener.setblocking(False)
    for name in preload:
        try:
            __import__(name)
        except ImportError as error:  # a stage that needs it fails in the copy exactly as it would alone
            _log(log, f"could not preload {name}: {error}")
        if threading.active_count() != 1:
            names = [thread.name for thread in threading.enumerate() if thread is not threading.main_thread()]
            _log(log, f"not serving: importing {name} started Python thread(s) {names}; stages run in their own processes")
            return 1
        _serve_waiting(listener, modules, log)
    _log(log, f"host pid {os.getpid()} ready in {time.monotonic() - started:.1f} s ({len(sys.modules)} modules, "
              f"{_thread_count() - 1} native library thread(s))")
    from flows.repro_server import is_alive

    listener.settimeout(ACCEPT_SECONDS)
    while is_alive(*watch):
        _serve_waiting(listener, modules, log)
    return 0


def _serve_waiting(listener: socket.socket, modules: tuple[str, ...], log: Path | None) -> None:
    """Fork a copy for each request waiting at `listener` (waiting up to its timeout for the first)."""
    while True:
        try:
            connection, _address = listener.accept()
        except (BlockingIOError, TimeoutError):
            return
        connection.setblocking(True)
        if os.fork() == 0:
            listener.close()
            _run_copy(connection, modules, log)  # never returns
        connection.close()


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def _run_copy(connection: socket.socket, modules: tuple[str, ...], log: Path | None) -> None:
    """In the forked copy: check the request, take over the caller's streams, run the module, report."""
    global in_stage_copy
    in_stage_copy = True
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    status = 1
    try:
        connection.settimeout(30)
        request = _receive(connection, with_fds=3)
        refusal = _refusal(request, connection, modules)
        if refusal:
            _log(log, f"declined {request.get('module') if request else '?'}: {refusal}")
            _send(connection, {"declined": refusal})
            os._exit(0)
        try:
            _send(connection, {"pid": os.getpid()})
            go = _receive(connection)
        except OSError:
            go = None
        if (go or {}).get("go") is not True:  # the caller gave up waiting and runs the stage itself
            _log(log, f"not run {request['module']}: the caller stopped waiting")
            os._exit(0)
        connection.settimeout(None)
        _adopt_streams(request.pop("_fds"))
        _stop_when_caller_goes(connection)
        started = time.monotonic()
        status = _run_module(request)
        _log(log, f"ran {request['module']} {' '.join(request['argv'])} in pid {os.getpid()}: exit {status}, "
                  f"{time.monotonic() - started:.1f} s")
        _send(connection, {"exit": status})
    finally:
        os._exit(status)


def _refusal(request: dict | None, connection: socket.socket, modules: tuple[str, ...]) -> str | None:
    """Why this process cannot run the request as a fresh process would; None when it can."""
    if request is None or len(request.get("_fds", [])) != 3:
        return "incomplete request"
    uid = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[1]
    if uid != os.getuid():
        return f"caller is user {uid}"
    if request["module"] not in modules:
        return f"{request['module']} is not a stage module"
    mine = _interpreter()
    for key, value in mine.items():
        if request.get(key) != value:
            return f"different {key}"
    differing = sorted(key for key in set(request["environ"]) | set(_host_environ)
                       if key not in PER_COMMAND_VARIABLES and request["environ"].get(key) != _host_environ.get(key))
    return f"different environment ({', '.join(differing[:5])})" if differing else None


def _adopt_streams(fds: list[int]) -> None:
    """Make the caller's stdin/stdout/stderr this process's, buffered as a fresh process buffers them."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdout.reconfigure(line_buffering=sys.stdout.isatty())
    sys.stderr.reconfigure(line_buffering=True)


def _stop_when_caller_goes(connection: socket.socket) -> None:
    """If the waiting command dies (killed, its terminal gone), stop this copy as SIGTERM would."""
    import threading

    def watch() -> None:
        try:
            while connection.recv(1):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exemplar-caller-watch", daemon=True).start()


def _run_module(request: dict) -> int:
    """Run `python -m <module> <argv>` in this process (the command line's checks, then the module as
    __main__); its exit status, including the exit handlers' work as at a normal interpreter exit."""
    import atexit
    import runpy
    import threading

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["environ"])
    module = request["module"]
    sys.argv = [module, *request["argv"]]
    sys.orig_argv = request["orig_argv"]
    from tasks import ancestry

    ancestry.known_dvc_ancestor = tuple(request["dvc"])  # the command's dvc process, not this host's parent
    signal.signal(signal.SIGINT, signal.default_int_handler)
    status = 0
    try:
        from flows import answer_command_line

        answer_command_line()  # what `import flows` does for `python -m flows.<stage>`: preflight
        sys.modules.pop(module, None)
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        status = _exit_status(stop.code)
    except KeyboardInterrupt:
        status = 130
    except BaseException:  # as the interpreter does with an uncaught exception: print it, status 1
        sys.excepthook(*sys.exc_info())
        status = 1
    for finish in (threading._shutdown, atexit._run_exitfuncs):  # as the interpreter does at exit
        try:
            finish()
        except BaseException:
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    return status


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _log(log: Path | None, line: str) -> None:
    if log is None:
        return
    with open(log, "a") as out:
        out.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")


def main(argv: list[str] | None = None) -> int:
    import flows  # noqa: F401  (the same environment defaults as every stage command)

    parser = argparse.ArgumentParser(prog="python -m flows.warm_stages", description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="where to listen (a path in a private folder)")
    parser.add_argument("--watch", type=int, required=True, help="pid of the dvc process")
    parser.add_argument("--started", type=float, required=True, help="its start time (psutil create_time)")
    parser.add_argument("--modules", nargs="*", default=list(STAGE_MODULES), help="the modules it may run")
    parser.add_argument("--preload", nargs="*", default=None, help="what to import first (default: the stages' stack)")
    parser.add_argument("--log", type=Path, default=None, help="one line per stage run")
    args = parser.parse_args(argv)
    preload = tuple(args.preload) if args.preload is not None else (*STAGE_MODULES, *RUN_TIME_IMPORTS)
    return serve(args.socket, (args.watch, args.started), tuple(args.modules), preload, args.log)


if __name__ == "__main__":
    from flows import warm_stages  # one module object: the copies' `in_stage_copy` must be the one delegate() reads

    sys.exit(warm_stages.main())
