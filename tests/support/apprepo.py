"""Test app repositories: a busybox httpd site with a health file and a slow CGI endpoint,
committed with git, and pushed with the real git client."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.support.busybox import BUSYBOX_IMAGE

PUSH_TIMEOUT = 240.0

DOCKERFILE = f"""FROM {BUSYBOX_IMAGE}
COPY www /www
{{extra}}CMD {{cmd}}
"""
SERVE_CMD = '["/bin/sh", "-c", "exec httpd -f -p \\"$PORT\\" -h /www"]'
CRASH_CMD = '["/bin/sh", "-c", "echo crashing on purpose; exit 1"]'

SLOW_CGI = """#!/bin/sh
sleep {seconds}
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo "slow done {version}"
"""

TEMPS_TOML = """port = 8000

[healthcheck]
path = "/health"
interval = 0.2
timeout = 1.0
healthy_threshold = 3
unhealthy_threshold = 3
deadline = 20

[deploy]
drain_timeout = 15
stop_timeout = 5
keep_releases = 5
bake = {bake:g}
"""


def turns_bad_after(passes: int) -> str:
    """A health CGI that answers 200 for its first `passes` probes, then 503 for good."""
    return rf"""n=$(cat /tmp/probes 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > /tmp/probes
if [ "$n" -le {passes} ]; then
  printf 'Content-Type: text/plain

pass %s
' "$n"
else
  printf 'Status: 503 Service Unavailable
Content-Type: text/plain

fail %s
' "$n"
fi
"""


# The settings TEMPS_TOML writes, as a table `settings=` overrides key by key.
DEFAULT_SETTINGS: dict[str, dict[str, object]] = {
    "healthcheck": {
        "path": "/health",
        "interval": 0.2,
        "timeout": 1.0,
        "healthy_threshold": 3,
        "unhealthy_threshold": 3,
        "deadline": 20,
    },
    "deploy": {"drain_timeout": 15, "stop_timeout": 5, "keep_releases": 5},
}
# For a release whose switch a request must not beat. Started once the push is seen in its
# gate, a request must reach the old release first: a gate of at least 2 s (three passes 1 s
# apart) leaves it time to. The default's 0.2 s interval left 0.1-0.4 s, and 1.2 s was once
# not enough in CI, where the state is seen late on a loaded machine.
SLOW_GATE: dict[str, dict[str, object]] = {
    "healthcheck": {"interval": 1.0, "recheck_interval": 1.0}
}


def git(repo: Path, *args: str, timeout: float = 60.0) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=git_env(),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def git_env() -> dict[str, str]:
    """An environment in which git never prompts and ignores the user's own config."""
    env = dict(os.environ)
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL="/dev/null",
        GIT_ASKPASS="",
        SSH_ASKPASS="",
        LC_ALL="C",
    )
    return env


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):  # an inline table
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML rendering for {value!r}")


def render_toml(settings: Mapping[str, Mapping[str, object]], bake: float) -> str:
    """temps.toml for DEFAULT_SETTINGS with `settings` laid over them, table by table."""
    tables: dict[str, dict[str, object]] = {
        name: dict(values) for name, values in DEFAULT_SETTINGS.items()
    }
    tables["deploy"]["bake"] = bake
    for name, values in settings.items():
        tables.setdefault(name, {}).update(values)
    out = ["port = 8000", ""]
    for name, values in tables.items():
        out.append(f"[{name}]")
        out += [f"{key} = {toml_value(value)}" for key, value in values.items()]
        out.append("")
    return "\n".join(out)


def make_app_repo(
    path: Path,
    version: str,
    *,
    health: bool = True,
    crash: bool = False,
    slow_seconds: int = 5,
    bake: float = 0,
    cmd: str | None = None,
    dockerfile: bool = True,
    dockerfile_extra: Sequence[str] = (),
    settings: Mapping[str, Mapping[str, object]] | None = None,
    toml_text: str | None = None,
    health_cgi: str | None = None,
    scripts: Mapping[str, str] | None = None,
    procfile: str | None = None,
) -> str:
    """Create (or update) the app repository at `path` for `version` and commit it.

    `health=False` leaves out `www/health`, so the health check gets 404; `crash=True`
    makes the container exit 1 at once. `bake` defaults to 0 so the old slot is drained and
    stopped right after the switch (the behaviour these tests check). Returns the new
    commit's sha.

    For the failure modes: `cmd` replaces the container's command (run by `/bin/sh -c`),
    `dockerfile=False` leaves the Dockerfile out, `dockerfile_extra` adds instructions before
    `CMD`, `settings` overrides temps.toml keys (`{"deploy": {"strategy": "recreate"}}`),
    `toml_text` replaces temps.toml whole, and `health_cgi` is the body of a shell CGI script
    at `/cgi-bin/health`; `scripts` adds more such CGI scripts, by name; `procfile` is the
    Procfile's text (none by default).
    """
    if not (path / ".git").exists():
        path.mkdir(parents=True, exist_ok=True)
        git(path, "init", "-q", "-b", "main")
        git(path, "config", "user.name", "Temps Test")
        git(path, "config", "user.email", "test@temps.invalid")
    if cmd is not None:
        command = json.dumps(["/bin/sh", "-c", cmd])
    else:
        command = CRASH_CMD if crash else SERVE_CMD
    extra = "".join(f"{line}\n" for line in dockerfile_extra)
    if dockerfile:
        _write(path / "Dockerfile", DOCKERFILE.format(cmd=command, extra=extra))
    else:
        (path / "Dockerfile").unlink(missing_ok=True)
    if toml_text is not None:
        _write(path / "temps.toml", toml_text)
    elif settings is not None:
        _write(path / "temps.toml", render_toml(settings, bake))
    else:
        _write(path / "temps.toml", TEMPS_TOML.format(bake=bake))
    if procfile is not None:
        _write(path / "Procfile", procfile)
    else:
        (path / "Procfile").unlink(missing_ok=True)
    cgi = path / "www" / "cgi-bin" / "health"
    if health_cgi is not None:
        _write(cgi, "#!/bin/sh\n" + health_cgi.strip("\n") + "\n", mode=0o755)
    else:
        cgi.unlink(missing_ok=True)
    for name, body in (scripts or {}).items():
        _write(path / "www" / "cgi-bin" / name, "#!/bin/sh\n" + body.strip("\n") + "\n", mode=0o755)
    _write(path / "www" / "index.html", f"version {version}\n")
    _write(
        path / "www" / "cgi-bin" / "slow",
        SLOW_CGI.format(seconds=slow_seconds, version=version),
        mode=0o755,
    )
    health_file = path / "www" / "health"
    if health:
        _write(health_file, "ok\n")
    else:
        health_file.unlink(missing_ok=True)
    git(path, "add", "-A")
    git(path, "commit", "-q", "--allow-empty", "-m", f"{version}")
    return git(path, "rev-parse", "HEAD").strip()


def git_push(
    repo: Path, url: str, timeout: float = PUSH_TIMEOUT, refspec: str = "main:main"
) -> tuple[int, str]:
    """`git push <url> main` (or `refspec`): (exit code, stdout and stderr together)."""
    return run_git(repo, "push", "--progress", url, refspec, timeout=timeout)


def remote_main(url: str, timeout: float = 60.0) -> str | None:
    """The commit `refs/heads/main` points at on the remote, or None if it has none."""
    done = subprocess.run(
        ["git", "ls-remote", url, "refs/heads/main"],
        env=git_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"git ls-remote failed:\n{done.stdout}{done.stderr}")
    fields = done.stdout.split()
    return fields[0] if fields else None


def run_git(
    cwd: Path, *args: str, timeout: float = PUSH_TIMEOUT, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """A git command in `cwd` (`env` laid over git_env()): (exit code, stdout and stderr)."""
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**git_env(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout
