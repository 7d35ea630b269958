"""The managed Traefik process: started with a generated static config, watched, restarted.

Traefik runs in its own session so it outlives the daemon: a daemon restart or crash must
not take the apps' routes down. At start the daemon adopts a Traefik it left running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
from pathlib import Path

import httpx
import structlog

from pipeline.bounded_http import BadAnswer, NoAnswer, NotListening, get_head
from pipeline.errors import TempsError
from pipeline.polling import poll_until
from pipeline.settings import Address, Settings
from pipeline.traefik.config import api_client, static_config, write_atomically
from pipeline.traefik.documents import render
from pipeline.traefik.homefile import MARKER, ensure_default_certificate, marker_host

log = structlog.get_logger()
LOGS_KEPT = 3  # rotated files of each Traefik log
PROCESS_POLL_SECONDS = 0.05
STOP_SECONDS = 10.0  # SIGTERM, then SIGKILL


def go_environment(settings: Settings, inherited: dict[str, str]) -> dict[str, str]:
    """The environment Traefik starts with: the daemon's own, and Go's garbage collector set.

    Go collects when the heap has grown by GOGC % over what the last collection left. At its
    default (100) Traefik collects so often under load, with the garbage temps' access log
    makes, that a request costs it a fifth more CPU than at 400 (0.48 against 0.40 ms here),
    which temps sets (settings.traefik_gogc), for 40-50 MiB more RSS; the heap is held under
    a soft limit (settings.traefik_memory_limit), near which Go collects as often as it must.
    BENCHMARKS.md, "Proxies side by side". GOGC or GOMEMLIMIT in the daemon's own environment
    (an operator's unit file) win over both."""
    chosen = {"GOGC": settings.traefik_gogc, "GOMEMLIMIT": settings.traefik_memory_limit}
    return {**chosen, **inherited}


class ManagedTraefik:
    def __init__(self, settings: Settings, check_interval: float = 1.0) -> None:
        self.settings = settings
        self.check_interval = check_interval
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._http = api_client()

    def start(self) -> None:
        ensure_default_certificate(self.settings)
        config = render(static_config(self.settings))
        path = self.settings.traefik_static_config
        changed = not path.exists() or path.read_bytes() != config
        write_atomically(self.settings.staging_dir, path, config)
        adopted = self._adopt()
        if adopted and changed:
            log.info("traefik.config_changed", pid=adopted)
            self._terminate(adopted)
            adopted = None
        if adopted:
            self._pid = adopted
            log.info("traefik.adopted", pid=adopted)
        else:
            refuse_taken_addresses(self.settings)
            self._spawn()
        self.wait_ready()
        self._confirm_web_entrypoint()
        self._watcher = threading.Thread(target=self._watch, name="traefik-watch", daemon=True)
        self._watcher.start()

    def stop_watching(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        """Stop Traefik itself (tests and `temps` uninstall; a daemon exit leaves it running)."""
        self.stop_watching()
        # A watcher caught between two checks would take the exit for a crash and restart it.
        if self._watcher is not None:
            self._watcher.join(timeout=30)
        if self._pid is not None:
            self._terminate(self._pid)

    @property
    def pid(self) -> int | None:
        return self._pid

    def alive(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return self._pid is not None and _running(self._pid)

    def ready(self) -> bool:
        """This home's Traefik runs and answers: its process is alive and the API that
        answers /ping shows this home's marker route (not just any Traefik's)."""
        if not self.alive():
            return False
        api = self.settings.traefik_api.url
        try:
            if self._http.get(f"{api}/ping", timeout=1.0).status_code != 200:
                return False
            marker = self._http.get(f"{api}/api/http/routers/{MARKER}@file", timeout=1.0)
            rule = marker.json().get("rule", "") if marker.status_code == 200 else ""
            return marker_host(self.settings) in str(rule)
        except (httpx.HTTPError, ValueError):
            return False

    def _confirm_web_entrypoint(self) -> None:
        """The web address answers this home's marker host, so it is this Traefik that holds it."""
        host = marker_host(self.settings)
        try:
            answer = get_head(self.settings.http.url + "/", 2.0, host=host)
            ours = host in answer.headers.get("location", "")
        except (NoAnswer, NotListening, BadAnswer):
            ours = False
        if not ours:
            raise TempsError(
                f"--http {self.settings.http} is not served by this home's Traefik "
                "(another program holds it?): stop that program or choose another address"
            )

    def wait_ready(self, timeout: float = 20.0) -> None:
        def answers() -> bool:
            if self.ready():
                return True
            if not self.alive():
                raise TempsError(f"Traefik exited at start; see {self._log_path()}")
            return False

        if not poll_until(answers, timeout, PROCESS_POLL_SECONDS):
            raise TempsError(f"Traefik did not answer /ping within {timeout:g}s")

    def _spawn(self) -> None:
        with open(self._log_path(), "ab") as output:
            self._process = subprocess.Popen(
                [
                    str(self.settings.traefik_bin),
                    f"--configFile={self.settings.traefik_static_config}",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=go_environment(self.settings, dict(os.environ)),
            )
        self._pid = self._process.pid
        self.settings.traefik_pid_file.write_text(f"{self._pid}\n")
        log.info("traefik.started", pid=self._pid)

    def _adopt(self) -> int | None:
        try:
            pid = int(self.settings.traefik_pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        ours = str(self.settings.traefik_static_config).encode() in cmdline
        return pid if ours and _running(pid) else None

    def _terminate(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return

        def exited() -> bool:
            if self._process is not None:
                self._process.poll()  # reaps our own child, or it stays a zombie
            return not _running(pid)

        poll_until(exited, STOP_SECONDS, PROCESS_POLL_SECONDS)
        if _running(pid):
            os.kill(pid, signal.SIGKILL)
        if self._process is not None and self._process.pid == pid:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(5)  # reap it, so that alive() says so at once

    def _watch(self) -> None:
        while not self._stop.wait(self.check_interval):
            if self.alive():
                self._rotate_logs()
            if self.alive() or self._stop.is_set():
                continue
            self.restarts += 1
            log.warning("traefik.restarted", was_pid=self._pid, restarts=self.restarts)
            try:
                self._spawn()
                self.wait_ready()
            except (OSError, TempsError) as exc:
                log.error("traefik.restart_failed", error=str(exc))

    def _rotate_logs(self) -> None:
        """Past `max_traefik_log_bytes`, a log moves to .1 (.1 to .2, ...; LOGS_KEPT kept) and
        Traefik, told with SIGUSR1, reopens it: its access log grows with every request."""
        rotated = False
        for path in (self.settings.access_log, self.settings.traefik_log):
            try:
                if path.stat().st_size < self.settings.max_traefik_log_bytes:
                    continue
            except FileNotFoundError:
                continue
            for older in range(LOGS_KEPT - 1, 0, -1):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(rotated_log(path, older), rotated_log(path, older + 1))
            os.replace(path, rotated_log(path, 1))
            rotated = True
        if rotated and self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGUSR1)
            log.info("traefik.logs_rotated")

    def _log_path(self) -> Path:
        return self.settings.traefik_dir / "traefik.out"


def rotated_log(path: Path, number: int) -> Path:
    return path.with_name(f"{path.name}.{number}")


def refuse_taken_addresses(settings: Settings) -> None:
    """Traefik exits at once on an address in use, and whatever holds it may answer for it."""
    named = [("--http", settings.http), ("--traefik-api", settings.traefik_api)]
    if settings.https is not None:
        named.append(("--https", settings.https))
    for flag, address in named:
        if not _free(address):
            raise TempsError(
                f"{flag} {address} is already in use by another program: stop it, or start "
                f"temps with another {flag} HOST:PORT"
            )


def _free(address: Address) -> bool:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address.host, address.port))
        except OSError:
            return False
    return True


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the parenthesised command name; Z is a zombie awaiting its parent.
    return status.rsplit(")", 1)[1].split()[0] != "Z"
