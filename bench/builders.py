"""builders: push to live of a Python app without a Dockerfile (temps makes one), first push and
a code-only second push, beside the same app with a hand-written Dockerfile.

The app is the tests' Python app (a Procfile, one dependency from a wheel in the
repository); its base image is the tests' Debian one (tests/support/stackimages). So that
each first push builds cold, every app of every run builds on a base image of its own: the
Debian image with a label of the run, a new image ID, which no cached layer has as parent
(named by the app's temps.toml `[build] image`, or the hand-written FROM). Each push is timed
as the pusher sees it, `git push` to its exit once the release is live, and its build step
from the release's records. The ways alternate from run to run.

    .venv/bin/python bench/builders.py [--runs 3]
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

from common import header, parse_args, push, running_daemon, secs, spread, step_seconds, summary

from tests.support.apprepo import git
from tests.support.daemon import TempsDaemon
from tests.support.dockercli import docker
from tests.support.stackapps import TEMPS_TOML, make_stack_repo
from tests.support.stackimages import IMAGES, ensure_stack_images

WAYS = ("generated", "handwritten")
# A Dockerfile as a user would write one for this app: one stage, the dependencies first.
HANDWRITTEN = """FROM {image}
WORKDIR /app
COPY requirements.txt ./
COPY wheels ./wheels
RUN python3 -m venv /venv && /venv/bin/pip install --no-cache-dir -r requirements.txt
COPY . .
ENV PATH=/venv/bin:$PATH
CMD ["python", "app.py"]
"""


def fresh_base(label: str) -> str:
    """The tests' Python image under a new ID: nothing in the build cache descends from it."""
    tag = f"temps-bench/python:{label}"
    dockerfile = f"FROM {IMAGES['python'][0]}\nLABEL run={label}\n"
    subprocess.run(
        ["docker", "build", "-q", "-t", tag, "-"],
        input=dockerfile,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return tag


def install_cached(output: str) -> bool:
    """Whether the build log shows the dependency install answered from the cache."""
    lines = [line.removeprefix("remote:").strip() for line in output.splitlines()]
    for at, line in enumerate(lines[:-1]):
        if line.startswith("Step ") and "install" in line and "requirements.txt" in line:
            return lines[at + 1] == "---> Using cache"
    return False


def deploy_twice(daemon: TempsDaemon, way: str, run: int, root: Path) -> dict[str, Any]:
    """A new app of `way`: its first push and a code-only second one, each timed."""
    app = f"{way[:4]}{run}"
    base = fresh_base(f"{app}-{uuid.uuid4().hex[:8]}")
    daemon.create_app(app)
    repo = root / app
    toml = TEMPS_TOML + (f'\n[build]\nimage = "{base}"\n' if way == "generated" else "")
    make_stack_repo(repo, "python", "v1", toml=toml)
    if way == "handwritten":
        (repo / "Dockerfile").write_text(HANDWRITTEN.format(image=base))
        git(repo, "add", "Dockerfile")
        git(repo, "commit", "-q", "-m", "a Dockerfile of its own")
    figures: dict[str, Any] = {"base": base}
    for number, push_name in ((1, "first"), (2, "second")):
        if number == 2:
            make_stack_repo(repo, "python", "v2", toml=toml)
        pushed = push(repo, daemon.git_url(app))
        if pushed.code != 0:
            raise RuntimeError(f"{way} push {number} failed:\n{pushed.output}")
        build = step_seconds(daemon.release(app, number)).get("building", 0.0)
        figures[f"{push_name}_push"] = pushed.seconds
        figures[f"{push_name}_build"] = build
        figures[f"{push_name}_install_cached"] = install_cached(pushed.output)
    return figures


def main() -> None:
    args = parse_args(__doc__ or "", runs=3)
    report = header("builders", args)
    ensure_stack_images()
    bases: list[str] = []
    with running_daemon("builders") as daemon:
        root = daemon.home.parent / "repos"
        for run in range(args.runs):
            order = WAYS if run % 2 == 0 else WAYS[::-1]
            row: dict[str, Any] = {}
            for way in order:
                figures = deploy_twice(daemon, way, run, root)
                bases.append(figures.pop("base"))
                row |= {f"{way}_{key}": value for key, value in figures.items()}
            print(
                f"    run {run + 1}: "
                + ", ".join(
                    f"{way} {secs(row[f'{way}_first_push'])} then {secs(row[f'{way}_second_push'])}"
                    for way in WAYS
                ),
                flush=True,
            )
            report.runs.append(row)
    for base in bases:
        docker("rmi", base, check=False)
    for way in WAYS:
        for push_name in ("first", "second"):
            for what in ("push", "build"):
                key = f"{way}_{push_name}_{what}"
                stats = summary([row[key] for row in report.runs])
                about = "git push to live" if what == "push" else "its build step"
                report.figure(
                    key, stats, f"{way}, {push_name} push, {about}: {spread(stats, secs)}"
                )
    cached = all(row["generated_second_install_cached"] for row in report.runs)
    report.figure(
        "generated_second_install_cached",
        cached,
        f"generated, second push: the dependency install answered from the cache: {cached}",
    )
    report.write()


if __name__ == "__main__":
    main()
