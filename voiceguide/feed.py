"""The podcast feed of the built tracks, and each track's chapters as a JSON chapters file.

RSS 2.0 with the iTunes namespace, which podcast apps read, and the Podcasting 2.0 namespace
(https://podcastindex.org/namespace/1.0): each item's <podcast:chapters> points at a JSON
chapters file (format 1.2.0) made from the MP3's own chapter frames, so an app shows the very
chapters the MP3 carries. An item's GUID is a digest of its audio: the same audio keeps its GUID
whichever address it is served from, and new audio is a new episode.
"""

from __future__ import annotations

import email.utils
import json
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from voiceguide.built import BuiltTrack, audio_digest
from voiceguide.urls import Urls

ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST = "https://podcastindex.org/namespace/1.0"
ATOM = "http://www.w3.org/2005/Atom"
CHAPTERS_TYPE = "application/json+chapters"
CHAPTERS_VERSION = "1.2.0"
# The Podcasting 2.0 namespace's UUIDv5 namespace for <podcast:guid>, seeded with the feed's URL.
PODCAST_GUID_NAMESPACE = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")
FEED_TITLE = "voiceguide routines"
FEED_DESCRIPTION = "Voice-guided routines built with voiceguide, served from this computer."
CATEGORY, SUBCATEGORY = "Health & Fitness", "Alternative Health"

for prefix, namespace in (("itunes", ITUNES), ("podcast", PODCAST), ("atom", ATOM)):
    ET.register_namespace(prefix, namespace)


def chapters_json(built: BuiltTrack) -> str:
    """The track's chapters in the JSON chapters format, times in seconds, in the MP3's order."""
    track = built.track
    document = {
        "version": CHAPTERS_VERSION,
        "title": track.title,
        **({"author": track.artist} if track.artist else {}),
        "fileName": track.path.name,
        "chapters": [
            {"startTime": chapter.start, "endTime": chapter.end, "title": chapter.title} for chapter in track.chapters
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def episode_title(built: BuiltTrack) -> str:
    """The routine's title, and the length asked for when it was built at one (NAME-20m.mp3)."""
    return f"{built.track.title} ({built.variant})" if built.variant else built.track.title


def podcast_feed(tracks: list[BuiltTrack], urls: Urls) -> bytes:
    """The RSS 2.0 feed with one item per track, as UTF-8 XML."""
    rss = ET.Element("rss", {"version": "2.0"})
    channel = _add(rss, "channel")
    _add(channel, "title", FEED_TITLE)
    _add(channel, "link", urls.base)
    _add(channel, "description", FEED_DESCRIPTION)
    _add(channel, "language", tracks[0].language if tracks else "en")
    _add(channel, f"{{{ATOM}}}link", attributes={"href": urls.feed(), "rel": "self", "type": "application/rss+xml"})
    if tracks:
        _add(channel, "lastBuildDate", _date(max(built.track.path.stat().st_mtime for built in tracks)))
    _add(channel, f"{{{ITUNES}}}author", "voiceguide")
    covers = [cover for cover in map(urls.cover, tracks) if cover]
    if covers:
        _add(channel, f"{{{ITUNES}}}image", attributes={"href": covers[0]})
    category = _add(channel, f"{{{ITUNES}}}category", attributes={"text": CATEGORY})
    _add(category, f"{{{ITUNES}}}category", attributes={"text": SUBCATEGORY})
    _add(channel, f"{{{ITUNES}}}explicit", "false")
    _add(channel, f"{{{ITUNES}}}type", "episodic")
    _add(channel, f"{{{PODCAST}}}guid", str(uuid.uuid5(PODCAST_GUID_NAMESPACE, _guid_seed(urls.feed()))))
    for built in tracks:
        _item(channel, built, urls)
    ET.indent(rss)
    return ET.tostring(rss, encoding="utf-8", xml_declaration=True) + b"\n"


def _item(channel: ET.Element, built: BuiltTrack, urls: Urls) -> None:
    track = built.track
    item = _add(channel, "item")
    _add(item, "title", episode_title(built))
    _add(item, "link", urls.file(f"{built.name}.html"))
    _add(item, "description", built.description or episode_title(built))
    _add(item, "guid", f"urn:sha256:{audio_digest(track)}", {"isPermaLink": "false"})
    _add(item, "pubDate", _date(track.path.stat().st_mtime))
    enclosure = {"url": urls.file(track.path.name), "length": str(track.path.stat().st_size), "type": "audio/mpeg"}
    _add(item, "enclosure", attributes=enclosure)
    _add(item, f"{{{ITUNES}}}duration", str(round(track.length)))
    _add(item, f"{{{ITUNES}}}author", track.artist or "voiceguide")
    _add(item, f"{{{ITUNES}}}episodeType", "full")
    cover = urls.cover(built)
    if cover:
        _add(item, f"{{{ITUNES}}}image", attributes={"href": cover})
    _add(item, f"{{{PODCAST}}}chapters", attributes={"url": urls.chapters(built), "type": CHAPTERS_TYPE})
    if track.path.with_suffix(".vtt").is_file():
        captions = urls.file(f"{built.name}.vtt")
        attributes = {"url": captions, "type": "text/vtt", "language": built.language, "rel": "captions"}
        _add(item, f"{{{PODCAST}}}transcript", attributes=attributes)


def _add(parent: ET.Element, tag: str, text: str | None = None, attributes: dict[str, str] | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes or {})
    element.text = text
    return element


def _date(timestamp: float) -> str:
    """RFC 822, as RSS 2.0 wants it."""
    return email.utils.format_datetime(datetime.fromtimestamp(timestamp, UTC), usegmt=True)


def _guid_seed(feed_url: str) -> str:
    """The feed's URL without its scheme and trailing slashes, as <podcast:guid> is seeded."""
    return feed_url.split("://", 1)[-1].rstrip("/")
