"""Reading what a client sends before anything is stored: JSON of every malformed kind (nested past a limit, numbers
Python will not parse, NaN and Infinity, which PostgreSQL's JSON and our responses cannot hold) is a 422 problem,
never a 500 after a half-stored job."""

from __future__ import annotations

import json
import math
from typing import Any

from services.api.problems import Problem
from shared.nesting import depth


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 reads as Infinity
        raise ValueError(f"{text} is too large a number")
    return value


def parse_json(data: bytes | str, what: str) -> Any:
    """`data` as JSON, strictly (no NaN or Infinity); a 422 `invalid_request` saying why otherwise."""
    try:
        return json.loads(data, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise Problem(422, "invalid_request", f"{what} is nested too deeply to read") from None
    # JSONDecodeError is a ValueError, and so is a number of over 4,300 digits.
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(422, "invalid_request", f"{what} is not JSON we accept: {exc}") from None


def check_depth(value: Any, what: str, limit: int) -> None:
    if depth(value) > limit:
        raise Problem(
            422,
            "invalid_request",
            f"{what} nests objects and arrays over {limit} levels (RECAP_API_MAX_JSON_DEPTH)",
        )


def json_object(text: str, what: str, limit: int) -> dict[str, Any]:
    """A multipart part that must hold a JSON object, at most `limit` levels deep."""
    value = parse_json(text, what)
    if not isinstance(value, dict):
        raise Problem(422, "invalid_request", f"{what} must be a JSON object")
    check_depth(value, what, limit)
    return value
