"""Benchmark voiceguide builds against the MP3 encoder's own speed on this machine.

    python benchmarks/bench.py                      # 60 steps, 60 minutes, default voice
    python benchmarks/bench.py --steps 20 --minutes 10 --engine pyttsx3 --json out.json

It writes a synthetic routine (mostly holds, like a real massage), then measures, each build in
a fresh process as a user would run it: a cold build (empty clip cache), a warm build (every
clip cached), an edit build (one step's text changed), `plan` for a 200-step routine, the time
the build process spends preparing each clip the voice makes (trim, level, fade), peak
memory of warm builds of 10, 60 and 180 minutes, and the encoder-only baseline: lameenc alone
encoding the same samples at the same settings. On the flagship routine it measures a cold build
of text that repeats nowhere (the 60-step routine repeats four phrases, which a cache of voiced
sentences voices once), and the edit loop: a one-line edit built as a command, and in `watch`,
the time from saving the edit to the new MP3 in place (the median of three saves). Times are
reported as ratios to the encoder alone on the same track, because these machines are shared
and absolute times are noisy.

Everything runs with a clip cache of its own ($VOICEGUIDE_CACHE_DIR in a temporary folder).

Peak memory is a build's own (its worker processes included). A child's peak counts its parent's
memory at the fork, so this process stays small: the baseline and the in-process `plan` run in
child processes of their own.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

FLAGSHIP = Path(__file__).resolve().parent.parent / "routines" / "back-pain-relief.yaml"
# One-line edits of the flagship, saved in turn while watch runs: (the line as it is, as it becomes).
FLAGSHIP_EDIT = ("A thin layer is all you need.", "A thin layer is enough.")  # built as a command
FLAGSHIP_EDITS = [  # then saved in turn while watch runs, each new words to voice
    ("A thin layer is all you need.", "A thin layer is all that you need."),
    ("A thin layer is all that you need.", "A very thin layer is all that you need."),
    ("A very thin layer is all that you need.", "Only a very thin layer is needed."),
]
WATCH_SECONDS = 300  # the most one save may take to build in watch
PREPARED_LINES = 6  # of the benchmark routine, voiced once to time preparing their clips
SHORT_LINES = ["Step 3.", "Halfway."]  # with them: lines as short as they come

PHRASES = [
    "Glide your palms slowly up the back, then fan them out across the shoulders.",
    "Knead the muscle beside the spine with your thumbs, in small unhurried circles.",
    "Rest both hands on the lower back and let your partner breathe into them.",
    "Press gently with the heels of your hands, moving outward from the spine.",
]


def write_routine(path: Path, steps: int, minutes: float) -> None:
    """A routine of `steps` steps lasting about `minutes`, mostly hands-on holds."""
    speech_seconds = 8.0  # about what one step's narration and chime take
    hold = max(5.0, minutes * 60 / steps - speech_seconds)
    lines = ["title: Benchmark routine", "intro: Welcome. This is a long routine for measuring.", "steps:"]
    for index in range(steps):
        lines += [f"  - name: Step {index + 1}", f"    say: Step {index + 1}. {PHRASES[index % len(PHRASES)]}",
                  f"    hold: {hold:.1f}s"]
    lines.append("outro: That is the end of the benchmark.")
    path.write_text("\n".join(lines) + "\n")


def run(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (MB) of one command run in a fresh process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{process.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss // 1024


def build_command(routine: Path, out: Path, engine: str) -> list[str]:
    return [sys.executable, "-m", "voiceguide", "build", str(routine), "-o", str(out), "-q", "--engine", engine]


def watch_latencies(routine: Path, out: Path, engine: str) -> list[float]:
    """Seconds from saving each of FLAGSHIP_EDITS to `watch` saying the new MP3 is built."""
    command = [sys.executable, "-m", "voiceguide", "watch", str(routine), "-o", str(out), "--engine", engine]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: queue.Queue = queue.Queue()
    def read() -> None:
        for line in process.stdout:
            lines.put((time.perf_counter(), line))

    threading.Thread(target=read, daemon=True).start()

    def next_result() -> tuple[float, str]:
        while True:
            at, line = lines.get(timeout=WATCH_SECONDS)
            if line.startswith(("built ", "up to date: ", "error: ")):
                return at, line

    try:
        assert next_result()[1].startswith("up to date: "), "watch did not start from an up-to-date build"
        time.sleep(10)  # the voice's workers start in the background: a user saves seconds later, too
        latencies = []
        for before, after in FLAGSHIP_EDITS:
            text = routine.read_text(encoding="utf-8")
            assert before in text, f"{before!r} is not in {routine}"
            saved = time.perf_counter()
            routine.write_text(text.replace(before, after, 1), encoding="utf-8")
            at, line = next_result()
            assert line.startswith("built "), line
            latencies.append(at - saved)
        return latencies
    finally:
        process.terminate()
        process.wait()


def in_child(*arguments: str | Path) -> float:
    """Seconds that one of this script's hidden measurements reports, run in a child process."""
    done = subprocess.run([sys.executable, __file__, *map(str, arguments)], capture_output=True, text=True, check=True)
    return float(done.stdout)


def encoder_baseline(mp3: Path) -> float:
    """Seconds lameenc alone takes for the track's samples, fed in the same one-second blocks."""
    from voiceguide import audio
    from voiceguide.export import encode_mp3

    samples = audio.decode_file(mp3)
    blocks = [samples[i : i + audio.SAMPLE_RATE] for i in range(0, len(samples), audio.SAMPLE_RATE)]
    with tempfile.TemporaryFile() as file:
        started = time.perf_counter()
        encode_mp3(blocks, file)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--engine", default="auto", help="auto (the default voice), pyttsx3 or piper")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--skip-memory", action="store_true", help="skip the 10/60/180-minute memory builds")
    parser.add_argument("--encoder-only", type=Path, help=argparse.SUPPRESS)  # MP3: print encoder_baseline()
    parser.add_argument("--plan-library", type=Path, help=argparse.SUPPRESS)  # ROUTINE: print its time
    parser.add_argument("--prepare-clips", type=Path, help=argparse.SUPPRESS)  # ROUTINE: print prepare_pace()
    options = parser.parse_args()
    if options.encoder_only or options.plan_library:
        print(encoder_baseline(options.encoder_only) if options.encoder_only else plan_in_process(options.plan_library))
        return
    if options.prepare_clips:
        print(prepare_pace(options.prepare_clips, options.engine))
        return

    work = Path(tempfile.mkdtemp(prefix="voiceguide-bench-"))
    os.environ["VOICEGUIDE_CACHE_DIR"] = str(work / "cache")  # for this process's children: cold means cold
    try:
        results = measure(work, options)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results)
    if options.json:
        options.json.write_text(json.dumps(results, indent=2) + "\n")


def measure(work: Path, options) -> dict:
    routine = work / "bench.yaml"
    write_routine(routine, options.steps, options.minutes)
    out = work / "out"
    cold, _ = run(build_command(routine, out, options.engine))
    warm, warm_rss = run(build_command(routine, out, options.engine) + ["--force"])  # unforced, it is up to date
    mp3 = out / "bench.mp3"
    baseline = in_child("--encoder-only", mp3)
    audio_seconds = json.loads(mp3.with_suffix(".json").read_text())["length"]
    routine.write_text(routine.read_text().replace("Step 7. ", "Step seven, slowly. ", 1))
    edit, _ = run(build_command(routine, out, options.engine))

    flagship = work / FLAGSHIP.name
    shutil.copy(FLAGSHIP, flagship)
    flagship_cold, _ = run(build_command(flagship, out, options.engine))  # none of its lines is cached yet
    flagship_mp3 = out / flagship.with_suffix(".mp3").name
    flagship_baseline = in_child("--encoder-only", flagship_mp3)
    before, after = FLAGSHIP_EDIT
    flagship.write_text(flagship.read_text(encoding="utf-8").replace(before, after, 1), encoding="utf-8")
    flagship_edit, _ = run(build_command(flagship, out, options.engine))
    flagship.write_text(flagship.read_text(encoding="utf-8").replace(after, before, 1), encoding="utf-8")
    run(build_command(flagship, out, options.engine))
    watch = statistics.median(watch_latencies(flagship, out, options.engine))

    plan_routine = work / "plan.yaml"
    write_routine(plan_routine, 200, 200)
    plan, _ = run([sys.executable, "-m", "voiceguide", "plan", str(plan_routine)])
    in_process_plan = in_child("--plan-library", plan_routine)
    prepare = in_child("--prepare-clips", routine, "--engine", options.engine)

    memory = {}
    if not options.skip_memory:
        for minutes in (10, 60, 180):
            path = work / f"memory-{minutes}.yaml"
            write_routine(path, 60, minutes)
            run(build_command(path, out, options.engine))  # cold, to fill the cache (the phrases are shared)
            _, memory[minutes] = run(build_command(path, out, options.engine) + ["--force"])

    return {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "routine": {"steps": options.steps, "minutes": options.minutes, "engine": options.engine,
                    "audio_seconds": round(audio_seconds, 1)},
        "seconds": {"encoder_only": round(baseline, 2), "cold": round(cold, 2), "warm": round(warm, 2),
                    "edit": round(edit, 2), "flagship_encoder_only": round(flagship_baseline, 2),
                    "flagship_cold": round(flagship_cold, 2),
                    "flagship_edit": round(flagship_edit, 2), "flagship_watch": round(watch, 2),
                    "plan_200_steps_cli": round(plan, 2), "plan_200_steps_library": round(in_process_plan, 3),
                    "prepare_clip_per_speech_second": round(prepare, 4)},
        "ratio_to_encoder": {"cold": round(cold / baseline, 2), "warm": round(warm / baseline, 2),
                             "edit": round(edit / baseline, 2),
                             "flagship_cold": round(flagship_cold / flagship_baseline, 2),
                             "flagship_edit": round(flagship_edit / flagship_baseline, 2),
                             "flagship_watch": round(watch / flagship_baseline, 2)},
        "peak_rss_mb": {"warm_build": warm_rss, **{f"warm_{m}min": rss for m, rss in memory.items()}},
    }


def plan_in_process(routine: Path) -> float:
    """`plan` without the interpreter's start-up: the library call the command makes."""
    from voiceguide.build import plan_routine

    started = time.perf_counter()
    plan_routine(routine)
    return time.perf_counter() - started


def prepare_pace(routine: Path, engine: str) -> float:
    """Seconds prepare_clip takes per second of speech it gives, in one process: on the routine's first
    lines and SHORT_LINES, each voiced once by the engine, prepared in three rounds (the quickest counts)."""
    from voiceguide import audio
    from voiceguide import routine as routines
    from voiceguide.timeline import spoken_lines
    from voiceguide.voices import engine_class
    from voiceguide.voices.choice import VoiceOverride, voice_request
    from voiceguide.voices.clips import prepare_clip

    loaded = routines.load(routine)
    request = voice_request(loaded.voice_settings, VoiceOverride(engine=engine))
    voice = engine_class(request.engine)(request.voice.id, request.language)
    lines = [*list(spoken_lines(loaded))[:PREPARED_LINES], *SHORT_LINES]
    with tempfile.TemporaryDirectory() as folder:
        outputs = [Path(folder) / f"{index}.wav" for index in range(len(lines))]
        for text, output in zip(lines, outputs, strict=True):
            voice.synthesize(request.spoken(text), request.speed, output)
        speech = sum(len(prepare_clip(output)) for output in outputs) / audio.SAMPLE_RATE
        rounds = []
        for _ in range(3):
            started = time.perf_counter()
            for output in outputs:
                prepare_clip(output)
            rounds.append(time.perf_counter() - started)
    return min(rounds) / speech


def report(results: dict) -> None:
    seconds, ratios, rss = results["seconds"], results["ratio_to_encoder"], results["peak_rss_mb"]
    routine = results["routine"]
    minutes = routine["audio_seconds"] / 60
    print(f"routine: {routine['steps']} steps, {minutes:.1f} min of audio, engine {routine['engine']}")
    print(f"{'measure':<28}{'seconds':>10}{'x encoder':>12}")
    print(f"{'encoder only (lameenc)':<28}{seconds['encoder_only']:>10.2f}{1:>12.2f}")
    for name in ("cold", "warm", "edit"):
        print(f"{name + ' build':<28}{seconds[name]:>10.2f}{ratios[name]:>12.2f}")
    print(f"flagship, {FLAGSHIP.name}:")
    print(f"{'encoder only (lameenc)':<28}{seconds['flagship_encoder_only']:>10.2f}{1:>12.2f}")
    print(f"{'cold build':<28}{seconds['flagship_cold']:>10.2f}{ratios['flagship_cold']:>12.2f}")
    print(f"{'one-line edit, as a command':<28}{seconds['flagship_edit']:>10.2f}{ratios['flagship_edit']:>12.2f}")
    print(f"{'one-line edit, watch':<28}{seconds['flagship_watch']:>10.2f}{ratios['flagship_watch']:>12.2f}")
    print(f"{'plan, 200 steps (command)':<28}{seconds['plan_200_steps_cli']:>10.2f}")
    print(f"{'plan, 200 steps (library)':<28}{seconds['plan_200_steps_library']:>10.3f}")
    print(f"{'prepare a clip, per s':<28}{seconds['prepare_clip_per_speech_second']:>10.4f}  (s per s of speech)")
    for name, value in rss.items():
        print(f"{'peak RSS ' + name:<28}{value:>10} MB")


if __name__ == "__main__":
    main()
