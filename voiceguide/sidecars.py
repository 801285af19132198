"""Sidecars: the files written beside the MP3, for players, tools and people.

NAME.json is the timeline, and what the build was made from; NAME.vtt has every spoken line as
a caption; NAME.md is a printable script with timestamps for practising; NAME.html is a player
page that works offline from the file system. All are made from one document (document.py),
so their times match each other and the MP3 to the millisecond.
"""

from __future__ import annotations

import base64
import html
import json
import re
import urllib.parse
from importlib import resources
from pathlib import Path

from voiceguide import words
from voiceguide.cover import Artwork
from voiceguide.document import EventEntry, TimelineDocument
from voiceguide.durations import format_duration
from voiceguide.export import DEFAULT_ARTIST
from voiceguide.files import atomic_path
from voiceguide.provenance import BUILT_FROM, OUTPUTS, Inputs, output_digests


def write_sidecars(
    mp3: Path, document: TimelineDocument, artwork: Artwork, author: str | None, inputs: Inputs, made: list[Path]
) -> list[Path]:
    """Write NAME.vtt, NAME.md and NAME.html beside `mp3`, then NAME.json, each atomically.

    NAME.json comes last: besides the document, it records what the outputs were built from
    (`inputs`) and a digest of each (the files in `made`, and the other sidecars), so the next
    build can tell whether they are up to date. Returns the sidecars, NAME.json first.
    """
    pages = {".vtt": webvtt(document), ".md": script(document), ".html": player_page(document, artwork, author)}
    for suffix, text in pages.items():
        _write(mp3.with_suffix(suffix), text)
    others = [mp3.with_suffix(suffix) for suffix in pages]
    recorded = {**document.as_json(), BUILT_FROM: inputs.as_json(), OUTPUTS: output_digests([*made, *others])}
    _write(mp3.with_suffix(".json"), json.dumps(recorded, indent=2, ensure_ascii=False) + "\n")
    return [mp3.with_suffix(".json"), *others]


def _write(target: Path, text: str) -> None:
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")


def _vtt_time(seconds: float) -> str:
    milliseconds = round(seconds * 1000)
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def webvtt(document: TimelineDocument) -> str:
    """Every spoken line as a WebVTT caption, shown while it is said."""
    cues = [
        f"{_vtt_time(event.start)} --> {_vtt_time(event.end)}\n{html.escape(event.text or '', quote=False)}"
        for event in document.events
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


def script(document: TimelineDocument) -> str:
    """A printable script: each chapter with its start time, what is said, the holds and the cues."""
    out = [f"# {_markdown(document.title)}", ""]
    if document.description:
        out += [_markdown(document.description), ""]
    out += [f"{format_duration(document.length)} in all, {words.count(len(document.chapters), 'chapter')}.", ""]
    if document.background:
        bed = document.background
        bed_line = f"*{_markdown(bed.sound)}*, {abs(bed.level):g} dB below the voice, dipping while it speaks."
        out += [f"Under the whole track: {bed_line}", ""]
    for index, chapter in enumerate(document.chapters):
        out += [f"## {clock(chapter.start)} {_markdown(chapter.title)}", ""]
        events = document.chapter_events(index)
        breathing = any(event.kind == "breath" for event in events)
        for event in events:
            if event.kind == "breath":
                continue
            indent = "  " if event.cue else ""  # cues sit under the hold they fall in
            out.append(f"{indent}- **{clock(event.start)}** {_script_line(event, breathing)}")
        out.append("")
    return "\n".join(out)


def _script_line(event: EventEntry, breathing: bool) -> str:
    if event.kind == "speech":
        return _markdown(event.text or "")
    if event.kind == "hold":
        pace = ", breathing with the tones" if breathing else ""
        return f"*Hands on for {format_duration(event.end - event.start)}{pace}.*"
    if event.kind == "pause":
        return f"*Pause for {format_duration(event.end - event.start)}.*"
    return f"*Sound: {_markdown(event.sound or '')}.*"


def player_page(document: TimelineDocument, artwork: Artwork, author: str | None) -> str:
    """The player page: the template with the document, the cover, the captions and the author filled in."""
    template = resources.files("voiceguide").joinpath("player.html").read_text(encoding="utf-8")
    data = json.dumps(document.as_json(), ensure_ascii=False).replace("<", "\\u003c")  # cannot close the <script>
    cover = f"data:{artwork.mime};base64,{base64.b64encode(artwork.data).decode('ascii')}"
    values = {
        "language": html.escape(document.language),
        "title": html.escape(document.title),
        "audio": html.escape(urllib.parse.quote(document.audio)),
        "captions": html.escape(urllib.parse.quote(str(Path(document.audio).with_suffix(".vtt")))),
        "author": html.escape(author or DEFAULT_ARTIST),
        "cover": cover,
        "timeline": data,
    }
    return re.sub(r"\{\{(\w+)\}\}", lambda match: values[match.group(1)], template)
