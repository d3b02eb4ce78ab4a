"""How deeply JSON nests, and how deep a value may be that Recap stores and must render again (its responses'
serializer stops at about 255 levels; a job whose stored metadata it cannot render would break every listing)."""

from __future__ import annotations

from typing import Any

RENDER_DEPTH = 128  # the most any stored JSON may nest: RECAP_API_MAX_JSON_DEPTH is bounded by it


def depth(value: Any) -> int:
    """How deeply `value` nests objects and arrays (a scalar is 0); iterative, so no depth can overflow it."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            level += 1
            deepest = max(deepest, level)
            stack.extend((child, level) for child in (node.values() if isinstance(node, dict) else node))
    return deepest
