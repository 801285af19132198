"""The page `voiceguide serve` shows first: every built routine, each length it was built at, and the feed."""

from __future__ import annotations

import html
import itertools

from voiceguide import words
from voiceguide.built import BuiltTrack
from voiceguide.sidecars import clock
from voiceguide.urls import Urls

STYLE = """
  :root { --bg: #10161f; --panel: #18212d; --line: #2a3646; --text: #ece5d6; --muted: #9aa6b2; --accent: #86c2ad; }
  * { box-sizing: border-box; }
  body { margin: 0; background: var(--bg); color: var(--text);
    font: 18px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
  main { max-width: 720px; margin: 0 auto; padding: max(16px, env(safe-area-inset-top)) 16px 32px; }
  h1 { font-size: 1.3rem; color: var(--muted); font-weight: 600; }
  article { display: flex; gap: 16px; background: var(--panel); border-radius: 18px; padding: 16px; margin: 0 0 16px; }
  article img { width: 88px; height: 88px; border-radius: 12px; flex: none; }
  h2 { font-size: 1.3rem; margin: 0 0 4px; line-height: 1.25; }
  article p { margin: 0 0 8px; color: var(--muted); font-size: 1rem; }
  ul { list-style: none; margin: 0; padding: 0; }
  li a { display: flex; justify-content: space-between; gap: 12px; min-height: 48px; align-items: center;
    color: var(--accent); text-decoration: none; border-top: 1px solid var(--line); }
  li span { color: var(--muted); font-variant-numeric: tabular-nums; }
  footer { color: var(--muted); font-size: 0.95rem; }
  footer a { color: var(--accent); word-break: break-all; }
"""


def index_page(tracks: list[BuiltTrack], urls: Urls) -> str:
    """One card per routine (cover, title, description) listing each track built from it, with its length and steps."""
    cards = [_card(list(group), urls) for _, group in itertools.groupby(tracks, key=lambda built: built.routine)]
    listing = "\n".join(cards) or "<p>No routines are built in this folder yet.</p>"
    feed = html.escape(urls.feed())
    language = html.escape(tracks[0].language if tracks else "en")
    return f"""<!doctype html>
<html lang="{language}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="color-scheme" content="dark">
<title>voiceguide</title>
<link rel="alternate" type="application/rss+xml" title="voiceguide routines" href="{feed}">
<style>{STYLE}</style>
</head>
<body>
<main>
<h1>Routines</h1>
{listing}
<footer>
<p>Podcast feed, for an app that fetches feeds on this phone: <a href="{feed}">{feed}</a></p>
</footer>
</main>
</body>
</html>
"""


def _card(tracks: list[BuiltTrack], urls: Urls) -> str:
    first = tracks[0]
    cover = urls.cover(first)
    image = f'<img src="{html.escape(cover)}" alt="">' if cover else ""
    description = f"<p>{html.escape(first.description)}</p>" if first.description else ""
    items = "\n".join(_entry(built, urls) for built in tracks)
    return f"""<article>
{image}
<div>
<h2>{html.escape(first.track.title)}</h2>
{description}
<ul>
{items}
</ul>
</div>
</article>"""


def _entry(built: BuiltTrack, urls: Urls) -> str:
    """A link to the track's player page: "Play" for the routine's own length, else the length it was built at."""
    label = f"{built.variant} version" if built.variant else "Play"
    page = html.escape(urls.file(f"{built.name}.html"))
    details = f"{clock(built.track.length)} · {words.count(len(built.track.chapters), 'chapter')}"
    return f'<li><a href="{page}">{html.escape(label)}<span>{details}</span></a></li>'

