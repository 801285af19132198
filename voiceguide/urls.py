"""Where `voiceguide serve` puts things: one URL layout for the server, its index page and the feed.

A track's own files keep their names at the top (NAME.mp3, NAME.html, NAME.vtt, ...), as they
sit in the folder, so the player page finds its MP3 and captions beside it as it does from a
file. What the server makes from a track sits in a folder of its own, so no name can clash.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from voiceguide.built import BuiltTrack

FEED = "feed.xml"
CHAPTERS = "chapters"  # CHAPTERS/NAME.json: JSON chapters of NAME.mp3
COVERS = "covers"  # COVERS/NAME.png (or .jpg): the cover art in NAME.mp3
COVER_SUFFIXES = {"image/png": ".png", "image/jpeg": ".jpg"}


@dataclass(frozen=True)
class Urls:
    base: str  # like "http://192.168.1.23:8000/", with the slash

    def file(self, name: str) -> str:
        return self.base + urllib.parse.quote(name)

    def feed(self) -> str:
        return self.file(FEED)

    def chapters(self, built: BuiltTrack) -> str:
        return self.file(f"{CHAPTERS}/{built.name}.json")

    def cover(self, built: BuiltTrack) -> str | None:
        artwork = built.track.artwork
        if artwork is None or artwork.mime not in COVER_SUFFIXES:
            return None
        return self.file(f"{COVERS}/{built.name}{COVER_SUFFIXES[artwork.mime]}")
