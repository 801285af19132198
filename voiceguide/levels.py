"""Levels: how loud each part of a track is, all in this one place.

The voice sets the level. Every spoken line is brought to VOICE_LUFS as it enters the clip
cache, and the track is mixed at unity gain, so the voice plays at VOICE_LUFS, measured over
the speech alone, in every routine and at every length. Everything else sits a fixed number of
LU below the voice, set where it is made (sounds.py, render.py), so no level depends on how long
the routine runs or what else plays:

    the voice (narration, spoken cues and numbers)  VOICE_LUFS, over all the speech joined
    chimes, bells, bowls, ticks, sound files        SOUND_OFFSET, each between short pauses
    breathing tones                                 BREATH_OFFSET, over the tones
    the background bed                              `background.level` (BED_OFFSET by default),
                                                    BED_DUCK lower while the voice speaks

The whole track's loudness then says how much of it is speech: a routine of long quiet holds
measures lower as a whole, while its voice stays where it was. No part peaks over the limiter's
ceiling, which only guards it; MP3 coding can still lift a peak, which the build checks in the
MP3 as a player decodes it.
"""

from __future__ import annotations

VOICE_LUFS = -16.0  # integrated loudness of the speech (the spoken-word standard)
SOUND_OFFSET = -8.0  # LU under the voice: clearly heard, never startling
BREATH_OFFSET = -18.0  # LU under the voice: gentle pacing, yet 4 LU over a bed at its default level
BED_OFFSET = -22.0  # LU under the voice: the default `background.level`
BED_DUCK = -8.0  # dB the bed dips while the voice speaks

TRUE_PEAK_LIMIT = -1.0  # dBTP, for the finished track as a player decodes it
# MP3 coding lifts true peaks: in the bundled routines by 0.6 to 1.8 dB, and once by 2.6 dB (in a
# sibilant, which the coder may code with little accuracy). The build checks the MP3 where it
# could pass the limit, and encodes again if it does; this headroom makes that rare.
TRACK_CEILING = TRUE_PEAK_LIMIT - 2.0  # the limiter's ceiling before encoding
SPEECH_PEAK = TRACK_CEILING - 1.0  # clips: so a bed or tones under the voice seldom reach the limiter
SOUND_PEAK = -8.0  # dBTP: a strike never peaks near the voice's peaks
RETRY_MARGIN = 0.5  # dB more off the ceiling for a track encoded again because MP3 coding lifted a peak

SOUND_LUFS = VOICE_LUFS + SOUND_OFFSET
BREATH_LUFS = VOICE_LUFS + BREATH_OFFSET
