"""Playing a built track on this computer, following its chapters as it plays.

An audio player already on the system does the playing (the same ones preview uses), from a
temporary WAV decoded from the MP3. The chapters come from the MP3's own CHAP frames, and the
current one follows the time since the player started.
"""

from __future__ import annotations

import bisect
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import miniaudio
import mutagen
import mutagen.mp3

from voiceguide import audio
from voiceguide.errors import VoiceguideError, last_line

TICK_SECONDS = 0.25
PLAYER_HINT = "install one (Debian/Ubuntu: sudo apt install pulseaudio-utils, or alsa-utils)"


@dataclass(frozen=True)
class Track:
    path: Path
    length: float  # seconds
    titles: tuple[str, ...]  # one per chapter, in order
    starts: tuple[float, ...]  # seconds

    def chapter_at(self, seconds: float) -> int:
        return max(0, bisect.bisect_right(self.starts, seconds) - 1)


def read_track(path: Path) -> Track:
    """The MP3's length and its chapters (CHAP frames); a track without chapters has one, its title."""
    if not path.is_file():
        raise VoiceguideError(f"{path}: no such file")
    try:
        mp3 = mutagen.mp3.MP3(path)
    except (mutagen.MutagenError, OSError) as error:
        raise VoiceguideError(f"{path}: not an MP3 file ({error})") from None
    tags = mp3.tags
    frames = sorted(tags.getall("CHAP"), key=lambda frame: frame.start_time) if tags else []
    titles = [str(frame.sub_frames.get("TIT2", frame.element_id)) for frame in frames]
    starts = [frame.start_time / 1000 for frame in frames]
    if not frames:
        titles, starts = [str(tags["TIT2"]) if tags and "TIT2" in tags else path.stem], [0.0]
    return Track(path, mp3.info.length, tuple(titles), tuple(starts))


PLAYERS = ("afplay", "pw-play", "paplay", "aplay")  # each plays the WAV file it is given


def find_player() -> str | None:
    """The first system audio player on PATH, if any."""
    return next((name for name in PLAYERS if shutil.which(name)), None)


def play(path: Path, on_position: Callable[[Track, float], None]) -> Track:
    """Play the MP3 at `path` to its end, calling `on_position(track, seconds)` a few times a second.

    Raises VoiceguideError when no player is installed or the player finds no audio device.
    """
    track = read_track(path)
    player = find_player()
    if player is None:
        raise VoiceguideError(f"no audio player found (looked for {', '.join(PLAYERS)}); {PLAYER_HINT}")
    with tempfile.TemporaryDirectory(prefix="voiceguide-") as folder:
        wav = Path(folder) / "track.wav"
        _decode_to_wav(path, wav)
        with (Path(folder) / "player.log").open("w+") as log:
            process = subprocess.Popen([player, str(wav)], stdout=subprocess.DEVNULL, stderr=log)
            started = time.monotonic()
            try:
                while True:
                    try:
                        process.wait(timeout=TICK_SECONDS)  # a player without a device stops at once
                        break
                    except subprocess.TimeoutExpired:
                        on_position(track, min(time.monotonic() - started, track.length))
            finally:
                if process.poll() is None:
                    process.terminate()
                    process.wait()
            log.seek(0)
            said = last_line(log.read())
    if process.returncode:
        raise VoiceguideError(f"cannot play {path}: {player} found no audio device ({said})")
    on_position(track, track.length)  # the player got to the end
    return track


def _decode_to_wav(mp3: Path, wav: Path) -> None:
    """Decode in pieces, so a long track never sits in memory whole."""
    try:
        audio.write_wav(wav, audio.stream_file(mp3))
    except miniaudio.DecodeError as error:
        raise VoiceguideError(f"{mp3}: cannot decode ({error})") from None
