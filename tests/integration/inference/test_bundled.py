"""The bundled real models: the hash check, idempotent installs, and what a missing model says."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inference.backends import bundled
from inference.backends.bundled import BUNDLES, BundleError, join_verified


def _parts(tmp_path: Path) -> tuple[list[Path], bytes]:
    data = os.urandom(3 * (1 << 20) + 123)  # several read blocks, an uneven end
    parts = []
    for n, at in enumerate(range(0, len(data), 1 << 20)):
        part = tmp_path / f"part{n:02d}.bin"
        part.write_bytes(data[at : at + (1 << 20)])
        parts.append(part)
    return parts, data


def test_parts_join_into_the_file_their_hash_names(tmp_path) -> None:
    parts, data = _parts(tmp_path)
    out = tmp_path / "models" / "m.gguf"
    seen: list[int] = []
    join_verified(parts, out, hashlib.sha256(data).hexdigest(), seen.append)
    assert out.read_bytes() == data and sum(seen) == len(data)
    assert (out.stat().st_mode & 0o777) == 0o644
    assert out.with_name("m.gguf.sha256").read_text().split()[0] == hashlib.sha256(data).hexdigest()


def test_a_corrupted_part_is_refused_and_nothing_is_left(tmp_path) -> None:
    parts, data = _parts(tmp_path)
    broken = bytearray(parts[2].read_bytes())
    broken[1000] ^= 0x01  # one bit
    parts[2].write_bytes(bytes(broken))
    out = tmp_path / "models" / "m.gguf"
    with pytest.raises(BundleError, match="refusing the file"):
        join_verified(parts, out, hashlib.sha256(data).hexdigest())
    assert list(out.parent.iterdir()) == []  # no file, no stamp, no temporary part


def test_an_unverified_or_truncated_file_is_not_installed(tmp_path) -> None:
    bundle = BUNDLES["smollm2-135m-instruct"]
    (tmp_path / bundle.file).write_bytes(b"x" * 10)
    assert not bundled.is_installed(bundle, tmp_path)
    with pytest.raises(BundleError, match="make models"):
        bundled.model_path("bundled:smollm2-135m-instruct", tmp_path)
    with pytest.raises(BundleError, match="bundled:qwen2.5-coder-1.5b-instruct"):
        bundled.bundle_of("bundled:gpt-5")


def test_models_install_twice_changes_nothing(smollm2: Path) -> None:
    """`make models` (recap models install) on an installed model fetches nothing and touches nothing."""

    def snapshot() -> dict[str, tuple[int, int]]:
        return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in smollm2.parent.iterdir()}

    before = snapshot()
    env = os.environ | {"RECAP_MODELS_DIR": str(smollm2.parent), "COLUMNS": "200"}
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "recap.cli", "models", "install", "smollm2-135m-instruct"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "installed (" in done.stdout and "fetching" not in done.stdout
    assert snapshot() == before
    listed = subprocess.run(
        [sys.executable, "-m", "recap.cli", "models", "list", "--json"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    rows = {r["spec"]: r for r in map(__import__("json").loads, listed.stdout.splitlines())}
    smol = rows["bundled:smollm2-135m-instruct"]
    assert smol["installed"] is True and smol["sha256"] == BUNDLES["smollm2-135m-instruct"].sha256
    assert smol["size_bytes"] == smollm2.stat().st_size
