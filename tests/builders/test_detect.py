"""Which stack a commit is, why, and the Dockerfile made for it (pure: files as a dict)."""

from __future__ import annotations

import json

import pytest

from pipeline.app.config import BuildSettings, load_toml
from pipeline.app.dockerfile import images_named, is_image_id
from pipeline.builders.detect import dockerfile_for, plan_for
from pipeline.builders.images import DEFAULTS
from pipeline.errors import BuildFailed, InvalidInput
from pipeline.settings import Settings
from tests.builders.files import Files, facts

PYTHON = {"requirements.txt": "flask==3.0\n", "app.py": ""}
NODE = {"package.json": json.dumps({"scripts": {"start": "node index.js"}})}
GO = {"go.mod": "module example.com/shop/hello\n\ngo 1.22\n", "main.go": ""}
STATIC = {"index.html": "<p>hi</p>"}


def lines_of(dockerfile: str) -> list[str]:
    return [line for line in dockerfile.splitlines() if line and not line.startswith("#")]


def index_of(lines: list[str], start: str) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(start))


def test_a_dockerfile_in_the_repository_always_wins() -> None:
    chosen = dockerfile_for(Files({"Dockerfile": "FROM x\n", **PYTHON, **NODE}), facts())
    assert chosen.plan is None and chosen.dockerfile == "FROM x\n"


def test_a_dockerfile_that_is_not_a_file_is_refused() -> None:
    with pytest.raises(BuildFailed, match="is a folder, not a file"):
        dockerfile_for(Files({"Dockerfile/x": "", **PYTHON}), facts())


@pytest.mark.parametrize(
    ("files", "detected"),
    [
        (PYTHON, "Python app detected (requirements.txt)"),
        ({"pyproject.toml": "[project]\nname = 'a'\n", "main.py": ""},
         "Python app detected (pyproject.toml)"),
        ({"pyproject.toml": "", "uv.lock": "", "main.py": ""},
         "Python app detected (pyproject.toml, uv.lock)"),
        ({"pyproject.toml": "", "poetry.lock": "", "main.py": ""},
         "Python app detected (pyproject.toml, poetry.lock)"),
        (NODE, "Node app detected (package.json)"),
        ({**NODE, "yarn.lock": "# yarn v1\n"}, "Node app detected (package.json, yarn.lock)"),
        ({**NODE, "pnpm-lock.yaml": ""}, "Node app detected (package.json, pnpm-lock.yaml)"),
        (GO, "Go app detected (go.mod)"),
        (STATIC, "Static site detected (index.html)"),
        ({"public/index.html": ""}, "Static site detected (public/)"),
        ({**PYTHON, **NODE, **GO, **STATIC}, "Python app detected (requirements.txt)"),
        ({**NODE, "public/index.html": ""}, "Node app detected (package.json)"),
    ],
)  # fmt: skip
def test_the_first_stack_whose_files_are_at_the_root_is_detected(
    files: dict[str, str], detected: str
) -> None:
    assert plan_for(Files(files), facts()).detected == detected


def test_a_repository_of_no_stack_is_refused_with_what_temps_looks_for() -> None:
    with pytest.raises(BuildFailed) as refused:
        plan_for(Files({"README.md": "", "src/main.rs": ""}), facts())
    for wanted in ("Dockerfile", "requirements.txt", "pyproject.toml", "package.json", "go.mod",
                   "index.html", "public/"):  # fmt: skip
        assert wanted in str(refused.value)


@pytest.mark.parametrize(
    ("files", "install"),
    [
        (PYTHON, "RUN python3 -m pip --python /venv/bin/python install -r requirements.txt"),
        ({"pyproject.toml": "", "uv.lock": "", "main.py": ""}, "RUN uv sync --frozen"),
        (
            {"pyproject.toml": "", "poetry.lock": "", "main.py": ""},
            "RUN VIRTUAL_ENV=/venv /opt/poetry/bin/poetry",
        ),
        ({**NODE, "package-lock.json": "{}"}, "RUN npm ci"),
        ({**NODE, "yarn.lock": "__metadata:\n"}, "RUN yarn install --immutable"),
        (GO, "RUN go mod download"),
    ],
)
def test_the_dependencies_install_from_the_manifests_before_the_code_is_copied(
    files: dict[str, str], install: str
) -> None:
    lines = lines_of(plan_for(Files(files), facts()).dockerfile)
    manifests = index_of(lines, "COPY ")
    installed = index_of(lines, install)
    code = index_of(lines, "COPY . ")
    assert manifests < installed < code
    assert "." not in lines[manifests].split()[1:-1]


@pytest.mark.parametrize("files", [PYTHON, NODE, GO, STATIC])
def test_the_image_runs_unprivileged_on_port(files: dict[str, str]) -> None:
    dockerfile = plan_for(Files(files), facts(port=5000)).dockerfile
    final = dockerfile[dockerfile.rindex("\nFROM ") :]
    assert "useradd --system --no-log-init --uid 10001" in final
    assert "\nUSER 10001:10001\n" in final
    assert "PORT=5000" in final and "\nEXPOSE 5000\n" in final


@pytest.mark.parametrize("files", [PYTHON, NODE, GO, STATIC])
def test_every_dockerfile_names_only_its_base_images(files: dict[str, str]) -> None:
    named = images_named(plan_for(Files(files), facts()).dockerfile)
    assert named and set(named) <= set(DEFAULTS.values())
    assert not any(is_image_id(image) for image in named)


def test_go_leaves_the_compiler_in_the_build_stage() -> None:
    dockerfile = plan_for(Files(GO), facts()).dockerfile
    assert images_named(dockerfile) == [DEFAULTS["go"], DEFAULTS["go-runtime"]]
    assert "COPY --from=build /out/ /app/bin/" in dockerfile
    assert dockerfile.endswith('CMD ["/bin/sh", "-c", "exec hello"]\n')


@pytest.mark.parametrize("files", [PYTHON, NODE, GO, STATIC])
def test_the_procfile_web_command_is_the_images_command(files: dict[str, str]) -> None:
    dockerfile = plan_for(Files(files), facts(web="bin/serve -b :$PORT")).dockerfile
    assert dockerfile.endswith('CMD ["/bin/sh", "-c", "exec bin/serve -b :$PORT"]\n')


def test_a_procfile_makes_an_app_of_no_entry_file_buildable() -> None:
    files = {"requirements.txt": "", "package.json": "{}", "go.mod": "module x\n"}
    for name in files:
        assert plan_for(Files({name: files[name]}), facts(web="serve")).dockerfile


@pytest.mark.parametrize(
    ("files", "command"),
    [
        (PYTHON, "python app.py"),
        ({"requirements.txt": "", "main.py": "", "app.py": ""}, "python main.py"),
        (NODE, "node index.js"),
        ({"package.json": json.dumps({"main": "srv/start.js"}), "srv/start.js": ""},
         "node srv/start.js"),
        ({"package.json": "{}", "server.js": ""}, "node server.js"),
        ({"go.mod": "module hello\n", "cmd/api/main.go": ""}, "api"),
        (STATIC, 'caddy file-server --root /srv --listen \\":$PORT\\"'),
    ],
)  # fmt: skip
def test_without_a_procfile_each_stack_has_its_own_command(
    files: dict[str, str], command: str
) -> None:
    assert plan_for(Files(files), facts()).dockerfile.endswith(f'"exec {command}"]\n')


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ({"requirements.txt": ""}, "Procfile"),
        ({"package.json": "{}"}, "'start' script"),
        ({"go.mod": "module x\n", "cmd/a/main.go": "", "cmd/b/main.go": ""}, "web: bin/"),
        ({"go.mod": "go 1.22\n", "main.go": ""}, "no module line"),
        ({"package.json": "[1"}, "package.json:"),
        ({"pyproject.toml": "[project"}, "pyproject.toml:"),
    ],
)
def test_what_cannot_be_built_is_refused_with_the_reason(files: dict[str, str], words: str) -> None:
    with pytest.raises(BuildFailed, match=words):
        plan_for(Files(files), facts())


def test_local_packages_a_manifest_names_are_copied_with_it() -> None:
    files = {
        "requirements.txt": "-r reqs/base.txt\n--find-links ./wheels\n./pkgs/b-1.0.tar.gz\n",
        "reqs/base.txt": "-c constraints.txt\nflask\n",
        "reqs/constraints.txt": "flask<4\n",
        "app.py": "",
    }
    copies = [line for line in lines_of(plan_for(Files(files), facts()).dockerfile)
              if line.startswith("COPY ")]  # fmt: skip
    assert copies[:5] == [
        "COPY requirements.txt ./",
        "COPY reqs/base.txt ./reqs/base.txt",
        "COPY reqs/constraints.txt ./reqs/constraints.txt",
        "COPY wheels ./wheels",
        "COPY pkgs/b-1.0.tar.gz ./pkgs/b-1.0.tar.gz",
    ]
    node = {
        "package.json": json.dumps({"main": "i.js", "dependencies": {"g": "file:vendor/g"}}),
        "i.js": "",
    }
    assert "COPY vendor/g ./vendor/g" in plan_for(Files(node), facts()).dockerfile
    go = {"go.mod": "module m\nreplace example.com/x => ./x\n", "main.go": ""}
    assert "COPY x ./x" in plan_for(Files(go), facts()).dockerfile
    vendored = plan_for(Files({**go, "vendor/modules.txt": ""}), facts()).dockerfile
    assert "go mod download" not in vendored


def test_an_editable_install_of_the_app_itself_copies_the_code_first() -> None:
    lines = lines_of(
        plan_for(Files({"requirements.txt": "-e .\n", "app.py": ""}), facts()).dockerfile
    )
    assert index_of(lines, "COPY . .") < index_of(lines, "RUN python3 -m pip")


@pytest.mark.parametrize("path", ["../secret.whl", "/etc/passwd", "wheels/$HOME.whl"])
def test_a_path_outside_the_repository_or_unquotable_is_refused(path: str) -> None:
    with pytest.raises(BuildFailed, match=r"^requirements\.txt names"):
        plan_for(Files({"requirements.txt": f"--find-links {path}\n", "app.py": ""}), facts())


def test_base_images_come_from_the_app_then_the_daemon_then_the_defaults() -> None:
    mirror = {"python": "mirror.local/python:3.12", "go-runtime": "mirror.local/debian:12"}
    by_daemon = plan_for(Files(PYTHON), facts(base_images=mirror)).dockerfile
    assert images_named(by_daemon) == ["mirror.local/python:3.12"] * 2
    own = BuildSettings(image="python:3.11", runtime_image="python:3.11-slim")
    by_app = plan_for(Files(PYTHON), facts(base_images=mirror, build=own)).dockerfile
    assert images_named(by_app) == ["python:3.11", "python:3.11-slim"]
    go = plan_for(Files(GO), facts(base_images=mirror)).dockerfile
    assert images_named(go) == [DEFAULTS["go"], "mirror.local/debian:12"]
    uv = {"pyproject.toml": "", "uv.lock": "", "main.py": ""}
    assert DEFAULTS["uv"] in images_named(plan_for(Files(uv), facts()).dockerfile)


def test_temps_toml_build_table_is_checked() -> None:
    config = load_toml('[build]\nimage = "registry.local:5000/python:3.12"\n')
    assert config.build.image == "registry.local:5000/python:3.12"
    with pytest.raises(InvalidInput, match=r"^temps\.toml: build\.image: an image reference"):
        load_toml('[build]\nimage = "python 3"\n')
    with pytest.raises(InvalidInput, match=r"unknown key build\.stack"):
        load_toml('[build]\nstack = "go"\n')


def test_the_daemon_reads_base_images_by_role() -> None:
    settings = Settings.model_validate({"base_images": "python=m/python:3,static=m/caddy:2"})
    assert dict(settings.base_images) == {"python": "m/python:3", "static": "m/caddy:2"}
    with pytest.raises(ValueError, match="role among"):
        Settings.model_validate({"base_images": "ruby=ruby:3"})
