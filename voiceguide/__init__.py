"""voiceguide: turn a routine of steps into one voice-guided audio track."""

__version__ = "0.1.0"
