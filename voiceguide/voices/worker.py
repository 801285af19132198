"""The worker process: loads one voice of one engine, then voices one clip per request.

It is started with the engine's name, the voice's id, the language and, optionally, the clip
cache's folder. Protocol, one JSON object per line: the worker first answers {"ready": voice_id}
(or {"error": ...}), then answers each request {"text", "speed", "path"} with {"ok": true} or
{"error": ...}. The engine may print to stdout, so replies go to a private copy of the
original stdout and everything else printed goes to stderr.

`python -m voiceguide.voices.worker --list ENGINE...` instead answers one line, for each engine
its voices or why it is missing: {"pyttsx3": {"voices": [...]}, "piper": {"missing": ...}}.
Listing can load an engine, so it runs here too, never in the build process.

A worker runs in `environment()`: its temporary files go to a folder its parent removes, and the
Piper runtime is kept from writing under the user's home.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from voiceguide.errors import VoiceguideError
from voiceguide.voices import engine_class


def environment(scratch: Path) -> dict[str, str]:
    """The environment to start a worker in: temporary files in `scratch`, and no telemetry.

    onnxruntime (under Piper) starts Microsoft's telemetry when imported: it writes a device id
    and an event store under ~/.cache/Microsoft/DeveloperTools and a `.ses` session file in the
    temporary folder, and uploads to mobile.events.data.microsoft.com. ORT_DISABLE_TELEMETRY
    stops all of it (ORT_TELEMETRY_DISABLED, which its privacy notes name, does not in 1.32). Any
    temporary file an engine leaves, even when killed, goes with `scratch`, which the parent removes.
    """
    temporary = {name: str(scratch) for name in ("TMPDIR", "TEMP", "TMP")}
    return {**os.environ, **temporary, "ORT_DISABLE_TELEMETRY": "1"}


def main(engine_name: str, voice: str, language: str, cache_folder: str | None = None) -> None:
    """Serve requests with `voice` loaded; the engine may keep what it reuses in `cache_folder` (see Engine)."""
    reply = _protocol()
    try:
        engine = engine_class(engine_name)(voice, language, None if cache_folder is None else Path(cache_folder))
    except Exception as error:  # any failure to load is reported to the parent, not raised here
        reply(error=str(error))
        return
    reply(ready=engine.voice.id, name=engine.voice.name)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            engine.synthesize(request["text"], request["speed"], Path(request["path"]))
        except Exception as error:  # reported per clip; the parent decides to retry
            reply(error=f"{type(error).__name__}: {error}")
        else:
            reply(ok=True)


def list_voices(engine_names: list[str]) -> None:
    reply = _protocol()
    listing: dict[str, dict[str, Any]] = {}
    for name in engine_names:
        try:
            listing[name] = {"voices": [dataclasses.asdict(voice) for voice in engine_class(name).voices()]}
        except VoiceguideError as error:
            listing[name] = {"missing": str(error)}
    reply(**listing)


def _protocol():
    """Keep the real stdout for replies and send everything else printed to stderr."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def reply(**message) -> None:
        replies.write(json.dumps(message) + "\n")

    return reply


if __name__ == "__main__":
    if sys.argv[1] == "--list":
        list_voices(sys.argv[2:])
    else:
        main(*sys.argv[1:5])
