"""A new routine to start from: `voiceguide new NAME` writes the commented starter.yaml as routines/NAME.yaml."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

from voiceguide.errors import VoiceguideError
from voiceguide.files import atomic_path

DEFAULT_FOLDER = Path("routines")


def new_routine(name: str, folder: Path = DEFAULT_FOLDER) -> Path:
    """Write FOLDER/NAME.yaml, a starting routine titled after NAME; an existing file is never replaced."""
    stem = name.removesuffix(".yaml")
    if not re.fullmatch(r"\w[\w-]*", stem):
        plain = "give a plain name like back-rub (letters, digits, - and _)"
        raise VoiceguideError(f"{name!r} is not a routine name; {plain}")
    target = folder / f"{stem}.yaml"
    if target.exists():
        raise VoiceguideError(f"{target} already exists; give another name, or edit that file")
    template = resources.files("voiceguide").joinpath("starter.yaml").read_text(encoding="utf-8")
    values = {
        "title": json.dumps(stem.replace("-", " ").replace("_", " ").capitalize(), ensure_ascii=False),
        "name": stem,
        "path": target.as_posix(),
    }
    with atomic_path(target, keep_existing=True) as temporary:
        temporary.write_text(re.sub(r"\{\{(\w+)\}\}", lambda match: values[match.group(1)], template), encoding="utf-8")
    return target
