"""`recap tune`: fine-tunes a causal model on (task, text, target) examples, LoRA (peft) or full, resumable.

The prompts are the ones the stages send (the tier's prompt style through the model's own chat template), and the
loss is on the target's tokens only. A checkpoint every `checkpoint_every` optimizer steps holds the trainable
weights, the optimizer, the schedule and the loss curve; a run killed at any point resumes from the last one and
goes on exactly as it would have (the example order is a function of the seed and the epoch).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import PreTrainedModel, get_linear_schedule_with_warmup

from inference.backends.hf import TextModel
from recap.tuning.data import Example
from shared.errors import InputError
from shared.prompts import Prompts, SummaryLength

Method = Literal["lora", "full"]
IGNORE = -100  # transformers' label for "no loss here"
TASKS = {  # the tasks that are not one of the summary prompts: AMI's linked items
    "action": "State the action item agreed in this part of a meeting transcript: who will do what.",
    "decision": "State the decision made in this part of a meeting transcript.",
    "problem": "State the open problem or unresolved issue raised in this part of a meeting transcript.",
}


@dataclass(frozen=True)
class TuneConfig:
    method: Method = "lora"
    epochs: float = 1.0
    max_steps: int | None = None  # optimizer steps; None: `epochs` over the data
    learning_rate: float | None = None  # None: 2e-4 for LoRA, 2e-5 for full
    batch_size: int = 1
    grad_accum: int = 8  # examples per optimizer step = batch_size * grad_accum
    max_tokens: int = 1024  # prompt and target; longer examples are left out (counted)
    warmup_steps: int = 10
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    checkpoint_every: int = 25
    seed: int = 0
    threads: int | None = None

    @property
    def lr(self) -> float:
        return self.learning_rate or (2e-4 if self.method == "lora" else 2e-5)


@dataclass
class State:
    step: int = 0  # optimizer steps done
    losses: list[float] = field(default_factory=list)  # mean loss of each optimizer step


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]


def instruction(task: str, prompts: Prompts) -> str:
    known = {"chunk": prompts.chunk, "final": prompts.final[SummaryLength.MEDIUM]}
    known |= {"final_merge": prompts.final_merge[SummaryLength.MEDIUM], "merge": prompts.merge, **TASKS}
    if task not in known:
        raise InputError("unknown_task", f"training example task {task!r} is not one of {sorted(known)}")
    return known[task]


def encode(
    examples: Sequence[Example], model: TextModel, prompts: Prompts, max_tokens: int
) -> tuple[list[Encoded], int]:
    """Prompt and target ids (loss on the target and its end token only); returns them and how many were too long."""
    if model.is_seq2seq:
        raise InputError(
            "tune_unsupported_model", f"{model.name} is seq2seq: `recap tune` trains causal models"
        )
    tok = model.tokenizer
    kept: list[Encoded] = []
    for e in examples:
        prompt = model.prompt(instruction(e.task, prompts), e.text, instruction_last=prompts.instruction_last)
        prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        target_ids = tok(e.target, add_special_tokens=False)["input_ids"] + [model.eos_token_ids[0]]
        if len(prompt_ids) + len(target_ids) <= max_tokens:
            kept.append(Encoded(prompt_ids + target_ids, [IGNORE] * len(prompt_ids) + target_ids))
    return kept, len(examples) - len(kept)


def trainable(model: PreTrainedModel, config: TuneConfig) -> torch.nn.Module:
    if config.method == "full":
        return model
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def _order(n: int, seed: int, epoch: int) -> list[int]:
    order = list(range(n))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


def _batch(rows: Sequence[Encoded], pad: int, device: str) -> dict[str, torch.Tensor]:
    width = max(len(r.input_ids) for r in rows)
    ids = [r.input_ids + [pad] * (width - len(r.input_ids)) for r in rows]
    labels = [r.labels + [IGNORE] * (width - len(r.labels)) for r in rows]
    mask = [[1] * len(r.input_ids) + [0] * (width - len(r.input_ids)) for r in rows]
    return {
        "input_ids": torch.tensor(ids, device=device),
        "labels": torch.tensor(labels, device=device),
        "attention_mask": torch.tensor(mask, device=device),
    }


def total_steps(n: int, config: TuneConfig) -> int:
    per_epoch = math.ceil(n / (config.batch_size * config.grad_accum))
    return config.max_steps or max(1, math.ceil(per_epoch * config.epochs))


def batches_for(step: int, n: int, config: TuneConfig) -> list[list[int]]:
    """The example indices of optimizer step `step`'s micro-batches: a pure function, so a resumed run goes on
    with exactly the examples it would have seen."""
    size = config.batch_size * config.grad_accum
    start = step * size
    epoch, offset = divmod(start, n)
    order = _order(n, config.seed, epoch)
    while len(order) - offset < size:  # the step crosses into the next epoch
        epoch += 1
        order += _order(n, config.seed, epoch)
    picked = order[offset : offset + size]
    return [picked[i : i + config.batch_size] for i in range(0, size, config.batch_size)]


def train(
    module: torch.nn.Module,
    rows: Sequence[Encoded],
    config: TuneConfig,
    *,
    pad: int,
    device: str,
    checkpoint: Path,
    on_step: Callable[[State, int], None] = lambda _s, _t: None,
) -> State:
    """Trains from the last checkpoint in `checkpoint` (or from the start) to the last step; returns the curve."""
    if not rows:
        raise InputError("no_training_examples", f"no example fits in max_tokens={config.max_tokens}")
    torch.manual_seed(config.seed)
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    steps = total_steps(len(rows), config)
    warmup = min(config.warmup_steps, steps // 10)
    schedule = get_linear_schedule_with_warmup(optimizer, warmup, steps)  # type: ignore[no-untyped-call]
    state = resume(module, optimizer, schedule, checkpoint)
    use_bf16 = device.startswith("cuda")
    module.train()
    while state.step < steps:
        torch.manual_seed(config.seed + state.step)  # dropout masks: the same after a resume
        losses = []
        for micro in batches_for(state.step, len(rows), config):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
                loss = module(**_batch([rows[i] for i in micro], pad, device)).loss / config.grad_accum
            loss.backward()
            losses.append(float(loss.detach()) * config.grad_accum)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        state.losses.append(sum(losses) / len(losses))
        if state.step % config.checkpoint_every == 0 or state.step == steps:
            save_checkpoint(module, optimizer, schedule, state, checkpoint)
        on_step(state, steps)
    module.eval()
    return state


def _trainable_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    names = {n for n, p in module.named_parameters() if p.requires_grad}
    return {n: t for n, t in module.state_dict().items() if n in names}


def save_checkpoint(
    module: torch.nn.Module, optimizer: Any, schedule: Any, state: State, folder: Path
) -> None:
    """Written beside the old one and renamed over it: a kill mid-write leaves the previous checkpoint whole."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    part = folder.with_name(folder.name + ".part")
    part.mkdir(exist_ok=True)
    torch.save(_trainable_state(module), part / "weights.pt")
    torch.save(
        {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict()}, part / "optimizer.pt"
    )
    (part / "state.json").write_text(json.dumps(asdict(state)))
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        folder.rename(old)
    part.rename(folder)
    if old.exists():
        for f in old.iterdir():
            f.unlink()
        old.rmdir()


def resume(module: torch.nn.Module, optimizer: Any, schedule: Any, folder: Path) -> State:
    if not (folder / "state.json").is_file():
        folder = folder.with_name(folder.name + ".old")  # killed between save_checkpoint's two renames
        if not (folder / "state.json").is_file():
            return State()
    module.load_state_dict(torch.load(folder / "weights.pt", weights_only=True), strict=False)
    saved = torch.load(folder / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(saved["optimizer"])
    schedule.load_state_dict(saved["schedule"])
    return State(**json.loads((folder / "state.json").read_text()))


def save_result(module: torch.nn.Module, folder: Path) -> Path:
    """The adapter (LoRA) or the whole model (full), in transformers' own layout."""
    out = folder / ("adapter" if isinstance(module, PeftModel) else "model")
    module.save_pretrained(out)  # type: ignore[operator]  # both PeftModel and PreTrainedModel have it
    return out
