"""The images a Dockerfile builds on: what a build may read besides its own context.

All apps build on one engine, so an app could name another app's image (`FROM temps/b:...`,
`COPY --from=temps/b:... /app /x`) and read its files into its own build log. The build
checks every image named here against the engine before it starts. `ARG` defaults are
expanded as the builder would; build stages named with `AS` are not images.
"""

from __future__ import annotations

import re

_INSTRUCTION = re.compile(r"^\s*(\w+)\s+(.*)$")
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_IMAGE_ID = re.compile(r"^(sha256:)?[0-9a-f]{12,64}$")


def images_named(text: str) -> list[str]:
    """Every image the Dockerfile names in FROM and COPY --from, in order, ARGs expanded."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    found: list[str] = []
    for instruction, rest in _instructions(text):
        if instruction == "ARG":
            name, _, default = rest.partition("=")
            args.setdefault(name.strip(), default.strip().strip("\"'"))
        elif instruction == "FROM":
            words = [word for word in rest.split() if not word.startswith("--")]
            if not words:
                continue
            image = _expand(words[0], args)
            if image.lower() not in stages and image != "scratch":
                found.append(image)
            if len(words) >= 3 and words[1].lower() == "as":
                stages.add(words[2].lower())
        elif instruction == "COPY":
            for word in rest.split():
                if word.startswith("--from="):
                    source = _expand(word.removeprefix("--from="), args)
                    if source.lower() not in stages and not source.isdigit():
                        found.append(source)
    return found


def is_image_id(reference: str) -> bool:
    """A bare image ID names any image on the engine, of any app: never allowed."""
    return bool(_IMAGE_ID.match(reference))


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\r?\n", " ", text)  # line continuations
    found = []
    for line in joined.splitlines():
        if line.lstrip().startswith("#"):
            continue
        match = _INSTRUCTION.match(line)
        if match:
            found.append((match.group(1).upper(), match.group(2)))
    return found


def _expand(word: str, args: dict[str, str]) -> str:
    return _VARIABLE.sub(lambda m: args.get(m.group(1) or m.group(2), ""), word)
