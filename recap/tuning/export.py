"""A trained adapter as a GGUF file llama.cpp applies at load time, made by the pinned llama.cpp's own converter.

The converter comes from the llama-cpp-python sdist the engine is built from (same version, hash-checked by pip),
unpacked once into the var folder; it runs as its own process, never imported: it is llama.cpp's code, not ours.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from shared.errors import InputError

SDIST = "llama-cpp-python==0.3.36"  # the version pyproject.toml pins for the engine
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
VENDORED = "vendor/llama.cpp/"
KEEP = ("convert_lora_to_gguf.py", "convert_hf_to_gguf.py", "conversion/", "gguf-py/")


def llama_sources(var_dir: Path) -> Path:
    """The pinned llama.cpp's Python converters, unpacked under `var_dir` (downloaded once, hash-checked)."""
    dest = var_dir / "llama.cpp" / SDIST.split("==")[1]
    if (dest / "convert_lora_to_gguf.py").is_file():
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        pinned = Path(tmp) / "pinned.txt"
        pinned.write_text(f"{SDIST} --hash=sha256:{SDIST_SHA256}\n")
        fetch = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:"]
        done = subprocess.run(
            [*fetch, "--require-hashes", "-r", str(pinned), "-d", tmp], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise InputError(
                "llama_sources_unavailable", f"pip could not fetch {SDIST}: {done.stderr[-500:]}"
            )
        sdist = next(Path(tmp).glob("*.tar.gz"))
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = Path(tempfile.mkdtemp(dir=dest.parent))  # its own: two runs may unpack at once
        with tarfile.open(sdist) as tar:
            members = []
            for member in tar.getmembers():
                inner = member.name.split("/", 1)[-1]
                if inner.startswith(VENDORED) and inner.removeprefix(VENDORED).startswith(KEEP):
                    member.name = inner.removeprefix(VENDORED)
                    members.append(member)
            tar.extractall(part, members=members, filter="data")
        try:
            part.rename(dest)
        except OSError:  # another run unpacked the same sources first
            shutil.rmtree(part)
    return dest


def lora_to_gguf(adapter: Path, base_config: Path, out: Path, sources: Path) -> Path:
    """`adapter` (peft's folder) -> `out` (.gguf, f16: half the bytes of f32, and the adapter's weights are
    small corrections whose rounding error is far below the base's 4-bit quantization's)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(sources / "convert_lora_to_gguf.py"), "--outtype", "f16"]
    command += ["--base", str(base_config), "--outfile", str(out), str(adapter)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not out.is_file():
        raise InputError("adapter_export_failed", f"convert_lora_to_gguf.py failed: {done.stderr[-800:]}")
    return out


def model_to_gguf(model_dir: Path, out: Path, sources: Path) -> Path:
    """A fully fine-tuned model's folder (weights, config, tokenizer) -> one .gguf file (f16)."""
    command = [sys.executable, str(sources / "convert_hf_to_gguf.py"), "--outtype", "f16"]
    done = subprocess.run([*command, "--outfile", str(out), str(model_dir)], capture_output=True, text=True)
    if done.returncode != 0 or not out.is_file():
        raise InputError("model_export_failed", f"convert_hf_to_gguf.py failed: {done.stderr[-800:]}")
    return out
