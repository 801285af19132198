"""`voiceguide serve`: the built routines, to phones on the same network, until Ctrl-C.

aiohttp does the HTTP. Its FileResponse answers Range requests with 206 and Content-Range
(iOS Safari plays audio only so), sends ETag and Last-Modified and answers conditional requests
with 304, and sends files with sendfile, to many clients at once. Only GET and HEAD are routed.
Only built files are served: a track's MP3 (one with its timeline NAME.json beside it) and the
files of the same name beside it, found afresh for each request, so a rebuild shows at once.
Nothing in a subfolder (the clip cache) or outside the folder is reachable. What the server makes
itself (the index page, the feed, chapters, covers) carries an ETag of its content.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from voiceguide.built import BuiltTrack, find_built, is_built
from voiceguide.errors import VoiceguideError
from voiceguide.feed import CHAPTERS_TYPE, chapters_json, podcast_feed
from voiceguide.index_page import index_page
from voiceguide.lan import lan_addresses
from voiceguide.urls import CHAPTERS, COVER_SUFFIXES, COVERS, FEED, Urls

DEFAULT_HOST = "0.0.0.0"  # every network this computer is on
DEFAULT_PORT = 8000
FILE_TYPES = {  # the files a build writes beside NAME.mp3, and their content types
    ".mp3": "audio/mpeg",
    ".m4b": "audio/mp4",
    ".html": "text/html; charset=utf-8",
    ".vtt": "text/vtt; charset=utf-8",
    ".json": "application/json",
    ".md": "text/markdown; charset=utf-8",
}
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}  # always check for a rebuild
ADDRESS_IN_USE = {errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", errno.EADDRINUSE)}
FOLDER = web.AppKey("folder", Path)


@dataclass(frozen=True)
class Serving:
    folder: Path
    urls: tuple[str, ...]  # the addresses to open, likeliest first
    tracks: int
    routines: int
    reachable: str | None  # None when phones on the network can open it, else why not


def serve(folder: Path, host: str, port: int, on_ready: Callable[[Serving], None]) -> None:
    """Serve FOLDER's built routines on HOST:PORT (port 0: any free one) until interrupted; on_ready hears where."""
    if not folder.is_dir():
        raise VoiceguideError(
            f"{folder}: no such folder; build a routine into it first: voiceguide build ROUTINE -o {folder}"
        )
    tracks = find_built(folder)
    if not tracks:
        raise VoiceguideError(
            f"{folder}: no built routines to serve (a NAME.mp3 with its NAME.json); "
            f"build one first: voiceguide build ROUTINE -o {folder}"
        )
    asyncio.run(_serve(folder, host, port, len(tracks), len({built.routine for built in tracks}), on_ready))


async def _serve(
    folder: Path, host: str, port: int, tracks: int, routines: int, on_ready: Callable[[Serving], None]
) -> None:
    runner = web.AppRunner(make_app(folder), handle_signals=False, access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as error:
            raise VoiceguideError(_bind_problem(host, port, error)) from None
        bound = runner.addresses[0][1]
        urls, reachable = _addresses(host, bound)
        on_ready(Serving(folder, urls, tracks, routines, reachable))
        await asyncio.Event().wait()  # until Ctrl-C cancels it
    finally:
        await runner.cleanup()


def _bind_problem(host: str, port: int, error: OSError) -> str:
    if error.errno in ADDRESS_IN_USE:
        return f"cannot serve on port {port}: it is in use (is another server running?); choose another with --port"
    if error.errno == errno.EACCES:
        return (
            f"cannot serve on port {port}: not allowed here (ports under 1024 need administrator rights); "
            "choose another with --port"
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot serve on {host}: it is not an address of this computer; "
            "leave out --host to serve on every network"
        )
    return f"cannot serve on {host}:{port}: {error.strerror or error}"


def _addresses(host: str, port: int) -> tuple[tuple[str, ...], str | None]:
    """The URLs to open, and why a phone cannot open them (None when it can)."""
    if host in ("0.0.0.0", "::", ""):
        found = lan_addresses()
        if found:
            return tuple(f"http://{address}:{port}/" for address in found), None
        return (f"http://127.0.0.1:{port}/",), "this computer is on no network, so only it can open this"
    try:
        loopback = ipaddress.ip_address(host).is_loopback
        shown = f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        loopback, shown = host == "localhost", host
    return (f"http://{shown}:{port}/",), f"only this computer can open this (--host {host})" if loopback else None


def make_app(folder: Path) -> web.Application:
    app = web.Application()
    app[FOLDER] = folder.resolve()
    app.router.add_get("/", _index)
    app.router.add_get(f"/{FEED}", _feed)
    app.router.add_get(f"/{CHAPTERS}/{{name}}.json", _chapters)
    app.router.add_get(f"/{COVERS}/{{file}}", _cover)
    app.router.add_get("/{file}", _built_file)
    return app


def _urls(request: web.Request) -> Urls:
    """Links as the phone asked: the address it used, so they work from wherever it is."""
    return Urls(f"{request.scheme}://{request.host}/")


async def _tracks(request: web.Request) -> list[BuiltTrack]:
    return await asyncio.to_thread(find_built, request.app[FOLDER])


async def _track(request: web.Request, name: str) -> BuiltTrack:
    found = next((built for built in await _tracks(request) if built.name == name), None)
    if found is None:
        raise web.HTTPNotFound()
    return found


async def _index(request: web.Request) -> web.Response:
    return _made(request, index_page(await _tracks(request), _urls(request)).encode(), "text/html; charset=utf-8")


async def _feed(request: web.Request) -> web.Response:
    tracks = await _tracks(request)
    body = await asyncio.to_thread(podcast_feed, tracks, _urls(request))  # digests of the audio: reads every MP3
    return _made(request, body, "application/rss+xml; charset=utf-8")


async def _chapters(request: web.Request) -> web.Response:
    built = await _track(request, request.match_info["name"])
    return _made(request, chapters_json(built).encode(), CHAPTERS_TYPE)


async def _cover(request: web.Request) -> web.Response:
    file = Path(request.match_info["file"])
    built = await _track(request, file.stem)
    artwork = built.track.artwork
    if artwork is None or COVER_SUFFIXES.get(artwork.mime) != file.suffix:
        raise web.HTTPNotFound()
    return _made(request, artwork.data, artwork.mime)


async def _built_file(request: web.Request) -> web.FileResponse:
    folder, name = request.app[FOLDER], request.match_info["file"]
    path = folder / name
    if (
        Path(name).name != name
        or path.suffix not in FILE_TYPES
        or path.resolve().parent != folder  # a link out of the folder
        or not path.is_file()
        or not is_built(path.with_suffix(".mp3"))
    ):
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Content-Type": FILE_TYPES[path.suffix], **HEADERS})


def _made(request: web.Request, body: bytes, content_type: str) -> web.Response:
    """A response made here, with an ETag of its content; 304 when the client has it already."""
    etag = hashlib.sha256(body).hexdigest()[:32]
    headers = {"ETag": f'"{etag}"', **HEADERS}
    if request.if_none_match and any(tag.value in (etag, "*") for tag in request.if_none_match):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers={"Content-Type": content_type, **headers})
