"""The worker process: loads one voice of one engine, then voices one clip per request.

Protocol, one JSON object per line: the worker first answers {"ready": voice_id} (or
{"error": ...}), then answers each request {"text", "speed", "path"} with {"ok": true} or
{"error": ...}. The engine may print to stdout, so replies go to a private copy of the
original stdout and everything else printed goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(engine_name: str, voice: str, language: str) -> None:
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def reply(**message) -> None:
        replies.write(json.dumps(message) + "\n")

    from voiceguide.voices import engine_class

    try:
        engine = engine_class(engine_name)(None if voice == "-" else voice, language)
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


if __name__ == "__main__":
    main(*sys.argv[1:4])
