#!/usr/bin/env python3
"""Run the processes of a Procfile under supervisor, as a production process manager would.

    scripts/supervise.py [--procfile Procfile.dev ...] [--run-dir var/run/dev] [--only NAME ...]

The Procfile stays the one list of processes (`name: command`, `${VAR:-default}` expanded by the
shell, run from the repository root); several `--procfile`s add up (`make run` adds the relay
workers of Procfile.relay-celery when BROKAGE_OUTBOX_RELAY_MODE=celery). This writes a supervisord
configuration for them into the run directory and then becomes supervisord, in the foreground:

- a process that exits is started again; one that keeps dying at start is retried with a growing
  delay (supervisor's BACKOFF state: 1 s, 2 s, 3 s … up to `startretries`), the others keep running;
- Ctrl-C or SIGTERM stops every process: TERM to its whole process group (a web server's workers,
  Celery's pool), KILL after `stopwaitsecs`, and supervisord exits only once all of them are gone;
- a process killed outright (SIGKILL, the OOM killer) cannot stop its own children: the
  `reap-orphans` event listener (this script again) kills what is left of its process group when
  supervisor reports it exited, so a web server's workers or Celery's pool never outlive their master;
- `supervisorctl -c <run-dir>/supervisord.conf status|restart NAME|pid NAME` talks to it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def read_procfile(path: Path) -> dict[str, str]:
    entries = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, command = line.partition(":")
        entries[name.strip()] = command.strip()
    return entries


def supervisord_conf(processes: dict[str, str], run_dir: Path, *, stop_wait: int = 15) -> str:
    """The supervisord configuration: one [program] per process, logs to this terminal."""
    socket = run_dir / "supervisor.sock"
    lines = [
        "[supervisord]",
        "nodaemon=true",
        f"logfile={run_dir / 'supervisord.log'}",
        f"pidfile={run_dir / 'supervisord.pid'}",
        f"childlogdir={run_dir}",
        "loglevel=info",
        "",
        "[unix_http_server]",
        f"file={socket}",
        "chmod=0700",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{socket}",
        "",
    ]
    lines += [
        "[eventlistener:reap-orphans]",
        f"command={shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).resolve()))} --reap-orphans",
        "events=PROCESS_STATE_EXITED",
        "autorestart=true",
        "stderr_logfile=/dev/stderr",
        "stderr_logfile_maxbytes=0",
        "",
    ]
    for name, command in processes.items():
        # `exec` so the program itself is the supervised process and gets the signals (`exec env` when
        # the line starts with VAR=value assignments, which `exec` would take for the program); `%` is
        # supervisor's interpolation character.
        first = command.split(maxsplit=1)[0] if command.strip() else ""
        assigns = "=" in first and first.split("=", 1)[0].isidentifier()
        shell = f"exec {'env ' if assigns else ''}{command}".replace("%", "%%")
        lines += [
            f"[program:{name}]",
            f"command=/bin/sh -c {shlex.quote(shell)}",
            f"directory={ROOT}",
            "autostart=true",
            "autorestart=true",
            # Alive this long counts as started; dying sooner is retried with a growing delay.
            "startsecs=3",
            "startretries=20",
            "stopsignal=TERM",
            f"stopwaitsecs={stop_wait}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            "stdout_logfile=/dev/stdout",
            "stdout_logfile_maxbytes=0",
            "",
        ]
    return "\n".join(lines)


def reap_orphans() -> None:
    """A supervisor event listener: when a program exits, kill whatever is left in its process group
    (supervisor starts each program as the leader of a group of its own)."""
    while True:
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        header = dict(token.split(":", 1) for token in sys.stdin.readline().split())
        payload = sys.stdin.read(int(header["len"]))
        fields = dict(token.split(":", 1) for token in payload.split())
        pid = int(fields.get("pid", 0))
        if pid > 1:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        sys.stdout.write("RESULT 2\nOK")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procfile", type=Path, action="append", help="A Procfile (repeatable; default Procfile.dev).")
    parser.add_argument("--run-dir", type=Path, default=ROOT / "var" / "run" / "dev")
    parser.add_argument("--only", nargs="*", help="Run only these processes of the Procfile.")
    parser.add_argument("--reap-orphans", action="store_true", help=argparse.SUPPRESS)  # the event listener
    args = parser.parse_args(argv)
    if args.reap_orphans:
        reap_orphans()

    procfiles = args.procfile or [ROOT / "Procfile.dev"]
    processes = {name: command for procfile in procfiles for name, command in read_procfile(procfile).items()}
    if args.only:
        unknown = set(args.only) - set(processes)
        if unknown:
            parser.error(f"not in {', '.join(map(str, procfiles))}: {', '.join(sorted(unknown))}")
        processes = {name: command for name, command in processes.items() if name in args.only}
    run_dir = args.run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    conf = run_dir / "supervisord.conf"
    conf.write_text(supervisord_conf(processes, run_dir))
    supervisord = Path(sys.executable).parent / "supervisord"
    print(f"supervising {', '.join(processes)}; supervisorctl -c {conf} status", flush=True)
    os.execv(str(supervisord), [str(supervisord), "--nodaemon", "--configuration", str(conf)])  # noqa: S606
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
