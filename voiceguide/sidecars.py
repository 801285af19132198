"""Sidecars: the files written beside the MP3, for players, tools and people.

NAME.json is the timeline, and what the build was made from; NAME.vtt has every spoken line as
a caption; NAME.md is a printable script with timestamps for practising; NAME.html is a player
page that works offline from the file system. All are made from the timeline, so their times
match the MP3 to the millisecond.
"""

from __future__ import annotations

import base64
import html
import json
import re
import urllib.parse
from importlib import resources
from pathlib import Path

from voiceguide import audio
from voiceguide.cover import Artwork
from voiceguide.durations import format_duration
from voiceguide.files import atomic_path
from voiceguide.provenance import BUILT_FROM, OUTPUTS, output_digests
from voiceguide.routine import Routine
from voiceguide.timeline import Event, Timeline


def write_sidecars(
    mp3: Path, timeline: Timeline, routine: Routine, artwork: Artwork, built_from: dict, made: list[Path]
) -> list[Path]:
    """Write NAME.vtt, NAME.md and NAME.html beside `mp3`, then NAME.json, each atomically.

    NAME.json comes last: besides the timeline, it records what the outputs were built from
    (`built_from`) and a digest of each (the files in `made`, and the other sidecars), so the
    next build can tell whether they are up to date. Returns the sidecars, NAME.json first.
    """
    document = timeline_document(timeline, routine, mp3.name)
    pages = {".vtt": webvtt(timeline), ".md": script(document), ".html": player_page(document, artwork)}
    for suffix, text in pages.items():
        _write(mp3.with_suffix(suffix), text)
    others = [mp3.with_suffix(suffix) for suffix in pages]
    recorded = {**document, BUILT_FROM: built_from, OUTPUTS: output_digests([*made, *others])}
    _write(mp3.with_suffix(".json"), json.dumps(recorded, indent=2, ensure_ascii=False) + "\n")
    return [mp3.with_suffix(".json"), *others]


def _write(target: Path, text: str) -> None:
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")


def _seconds(sample: int) -> float:
    return round(audio.seconds(sample), 3)


def timeline_document(timeline: Timeline, routine: Routine, audio_file: str) -> dict:
    """The plan as plain data (times in seconds): the chapters with what is said in each, and every event."""

    def event_data(event: Event) -> dict:
        return {
            "kind": event.kind,
            "start": _seconds(event.start),
            "end": _seconds(event.end),
            "chapter": event.chapter,
            **({"text": event.text} if event.text else {}),
            **({"sound": event.sound.stem} if event.sound else {}),
            **({"breath": event.breath} if event.breath else {}),
            **({"cue": True} if event.cue else {}),
        }

    return {
        "routine": routine.name,
        "title": timeline.title,
        "description": routine.description,
        "language": routine.language,
        "audio": audio_file,
        "length": _seconds(timeline.length),
        "chapters": [
            {
                "title": chapter.title,
                "start": _seconds(chapter.start),
                "end": _seconds(chapter.end),
                "text": [
                    event.text
                    for event in timeline.events
                    if event.chapter == index and event.kind == "speech" and not event.cue
                ],
            }
            for index, chapter in enumerate(timeline.chapters)
        ],
        "events": [event_data(event) for event in timeline.events],
    }


def _vtt_time(sample: int) -> str:
    milliseconds = round(audio.seconds(sample) * 1000)
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def webvtt(timeline: Timeline) -> str:
    """Every spoken line as a WebVTT caption, shown while it is said."""
    cues = [
        f"{_vtt_time(event.start)} --> {_vtt_time(event.end)}\n{html.escape(event.text, quote=False)}"
        for event in timeline.events
        if event.kind == "speech"
    ]
    return "WEBVTT\n\n" + "".join(f"{number}\n{cue}\n\n" for number, cue in enumerate(cues, 1))


def clock(seconds: float) -> str:
    """0:05, 12:34 or 1:02:03."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _markdown(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", text)


def script(document: dict) -> str:
    """A printable script: each chapter with its start time, what is said, the holds and the cues."""
    out = [f"# {_markdown(document['title'])}", ""]
    if document["description"]:
        out += [_markdown(document["description"]), ""]
    out += [f"{format_duration(document['length'])} in all, {len(document['chapters'])} chapters.", ""]
    for index, chapter in enumerate(document["chapters"]):
        out += [f"## {clock(chapter['start'])} {_markdown(chapter['title'])}", ""]
        events = [event for event in document["events"] if event["chapter"] == index and event["kind"] != "breath"]
        breathing = any(event["kind"] == "breath" and event["chapter"] == index for event in document["events"])
        for event in events:
            indent = "  " if event.get("cue") else ""  # cues sit under the hold they fall in
            out.append(f"{indent}- **{clock(event['start'])}** {_script_line(event, breathing)}")
        out.append("")
    return "\n".join(out)


def _script_line(event: dict, breathing: bool) -> str:
    if event["kind"] == "speech":
        return _markdown(event["text"])
    if event["kind"] == "hold":
        pace = ", breathing with the tones" if breathing else ""
        return f"*Hands on for {format_duration(event['end'] - event['start'])}{pace}.*"
    return f"*Sound: {_markdown(event['sound'])}.*"


def player_page(document: dict, artwork: Artwork) -> str:
    """The player page: the template with the timeline and the cover filled in."""
    template = resources.files("voiceguide").joinpath("player.html").read_text(encoding="utf-8")
    data = json.dumps(document, ensure_ascii=False).replace("<", "\\u003c")  # cannot close the <script>
    cover = f"data:{artwork.mime};base64,{base64.b64encode(artwork.data).decode('ascii')}"
    values = {
        "language": html.escape(document["language"]),
        "title": html.escape(document["title"]),
        "audio": html.escape(urllib.parse.quote(document["audio"])),
        "cover": cover,
        "timeline": data,
    }
    return re.sub(r"\{\{(\w+)\}\}", lambda match: values[match.group(1)], template)
