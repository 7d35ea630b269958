"""One status post as it goes on the wire, whichever provider it is for."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Post:
    url: str
    headers: dict[str, str] = field(repr=False)  # they carry the token
    body: dict[str, str]
