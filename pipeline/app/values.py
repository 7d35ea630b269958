"""The values every section of `temps.toml` is made of, wherever the section is declared.

A leaf: it imports nothing of temps, so a backend may declare its own section of temps.toml
(`pipeline/backends/swarm.py`) with the same values and the same words for what is wrong.
Every value is strict: `"8000"` is not a port and `true` is not a number; an integer is
taken where a float is asked for, and becomes one.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Strict
from pydantic_core import PydanticCustomError

# The pydantic error type of text that cannot be stored.
TEXT = "text"

TABLE = ConfigDict(extra="forbid", allow_inf_nan=False)  # no unknown keys, no NaN


def well_formed(value: str) -> str:
    """Text that can be stored and sent on: valid UTF-8 (no lone surrogates), no NUL."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError(TEXT, "is not valid text") from None
    if "\x00" in value:
        raise PydanticCustomError(TEXT, "holds a NUL character")
    return value


Text = Annotated[str, Strict(), AfterValidator(well_formed)]
Int = Annotated[int, Strict()]
Number = Annotated[float, Strict()]  # strict still takes an integer, as a float
