"""Scale-out through ``accelerate launch``: the training commands re-launch themselves.

``harness sft|dpo|reward|online ... --launcher accelerate --accelerate-config F`` runs
``accelerate launch --config_file F [--num_processes N] -m harness.cli <stage> <the same arguments>``:
every process runs the same stage, TRL's trainers shard the work through Accelerate, and only the
main process writes artifacts. ``F`` is a file or the name of a shipped config:

* ``ddp``              multi-GPU data parallel (``ddp.yaml``)
* ``fsdp``             fully sharded data parallel, FSDP 2 (``fsdp.yaml``)
* ``deepspeed_zero3``  DeepSpeed ZeRO stage 3 (``deepspeed_zero3.yaml``; needs the ``deepspeed`` package)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from harness.errors import HarnessError

__all__ = ["SHIPPED", "LAUNCHED_ENV", "resolve_config", "accelerate_command", "strip_launcher_options", "relaunch"]

HERE = Path(__file__).resolve().parent
SHIPPED = {"ddp": HERE / "ddp.yaml", "fsdp": HERE / "fsdp.yaml", "deepspeed_zero3": HERE / "deepspeed_zero3.yaml"}
LAUNCHED_ENV = "HARNESS_LAUNCHED"  # set in the launched processes: they must not launch again
_KNOWN_TYPES = {"NO", "MULTI_GPU", "MULTI_CPU", "FSDP", "DEEPSPEED", "MULTI_XPU", "MULTI_NPU"}


def resolve_config(value: str | os.PathLike) -> Path:
    """A shipped config by name, or a file; checked to be an accelerate config before anything starts."""
    path = SHIPPED.get(str(value)) or Path(value)
    if not path.is_file():
        raise HarnessError(f"accelerate config {value} does not exist",
                           hint=f"give a file, or one of the shipped configs: {', '.join(SHIPPED)}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise HarnessError(f"{path} is not valid YAML: {exc}", hint="write it with 'accelerate config'") from None
    if not isinstance(data, dict) or data.get("distributed_type") not in _KNOWN_TYPES:
        raise HarnessError(f"{path} is not an accelerate config (distributed_type is {data.get('distributed_type') if isinstance(data, dict) else None!r})",
                           hint=f"distributed_type must be one of {', '.join(sorted(_KNOWN_TYPES))}; see the shipped configs in {HERE}")
    if data["distributed_type"] == "DEEPSPEED":
        import importlib.util

        if importlib.util.find_spec("deepspeed") is None:
            raise HarnessError(f"{path} uses DeepSpeed, which is not installed", hint="pip install deepspeed (on a GPU machine)")
    return path


def accelerate_command(stage: str, args: list[str], config: Path, *, num_processes: int | None = None) -> list[str]:
    """The command line that runs ``harness <stage> <args>`` under ``accelerate launch``."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config)]
    if num_processes is not None:
        cmd += ["--num_processes", str(num_processes)]
    return [*cmd, "-m", "harness.cli", stage, *args]


def strip_launcher_options(argv: list[str]) -> list[str]:
    """``argv`` without ``--launcher``, ``--accelerate-config`` and ``--num-processes`` (and their values)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in ("--launcher", "--accelerate-config", "--num-processes"):
            skip = "=" not in arg
            continue
        out.append(arg)
    return out


def relaunch(stage: str, argv: list[str], config: str | os.PathLike, *, num_processes: int | None = None) -> int:
    """Run the stage under ``accelerate launch`` and return its exit code."""
    if os.environ.get(LAUNCHED_ENV):
        raise HarnessError("already running under the launcher", hint="drop --launcher inside launched processes")
    path = resolve_config(config)
    if num_processes is not None and num_processes < 1:
        raise HarnessError(f"--num-processes must be at least 1, got {num_processes}")
    cmd = accelerate_command(stage, strip_launcher_options(argv), path, num_processes=num_processes)
    from harness import log as _log

    _log.info("launching: " + " ".join(cmd[1:]))
    return subprocess.call(cmd, env={**os.environ, LAUNCHED_ENV: "1"})
