"""Benchmark voiceguide builds against the MP3 encoder's own speed on this machine.

    python benchmarks/bench.py                      # 60 steps, 60 minutes, default voice
    python benchmarks/bench.py --steps 20 --minutes 10 --engine pyttsx3 --json out.json

It writes a synthetic routine (mostly holds, like a real massage), then measures, each build in
a fresh process as a user would run it: a cold build (empty clip cache), a warm build (every
clip cached), an edit build (one step's text changed), `plan` for a 200-step routine, peak
memory of warm builds of 10, 60 and 180 minutes, and the encoder-only baseline: lameenc alone
encoding the same samples at the same settings. Build times are reported as ratios to that
baseline, because these machines are shared and absolute times are noisy.

Peak memory is a build's own (its worker processes included). A child's peak counts its parent's
memory at the fork, so this process stays small: the baseline and the in-process `plan` run in
child processes of their own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    parser.add_argument("--plan-library", type=Path, nargs=2, help=argparse.SUPPRESS)  # ROUTINE OUT: print its time
    options = parser.parse_args()
    if options.encoder_only or options.plan_library:
        seconds = encoder_baseline(options.encoder_only) if options.encoder_only else plan_in_process(*options.plan_library)
        print(seconds)
        return

    work = Path(tempfile.mkdtemp(prefix="voiceguide-bench-"))
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

    plan_routine = work / "plan.yaml"
    write_routine(plan_routine, 200, 200)
    plan, _ = run([sys.executable, "-m", "voiceguide", "plan", str(plan_routine), "-o", str(out)])
    in_process_plan = in_child("--plan-library", plan_routine, out)

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
                    "edit": round(edit, 2), "plan_200_steps_cli": round(plan, 2),
                    "plan_200_steps_library": round(in_process_plan, 3)},
        "ratio_to_encoder": {"cold": round(cold / baseline, 2), "warm": round(warm / baseline, 2),
                             "edit": round(edit / baseline, 2)},
        "peak_rss_mb": {"warm_build": warm_rss, **{f"warm_{m}min": rss for m, rss in memory.items()}},
    }


def plan_in_process(routine: Path, out: Path) -> float:
    """`plan` without the interpreter's start-up: the library call the command makes."""
    from voiceguide.build import plan_routine

    started = time.perf_counter()
    plan_routine(routine, output_dir=out)
    return time.perf_counter() - started


def report(results: dict) -> None:
    seconds, ratios, rss = results["seconds"], results["ratio_to_encoder"], results["peak_rss_mb"]
    routine = results["routine"]
    print(f"routine: {routine['steps']} steps, {routine['audio_seconds'] / 60:.1f} min of audio, engine {routine['engine']}")
    print(f"{'measure':<28}{'seconds':>10}{'x encoder':>12}")
    print(f"{'encoder only (lameenc)':<28}{seconds['encoder_only']:>10.2f}{1:>12.2f}")
    for name in ("cold", "warm", "edit"):
        print(f"{name + ' build':<28}{seconds[name]:>10.2f}{ratios[name]:>12.2f}")
    print(f"{'plan, 200 steps (command)':<28}{seconds['plan_200_steps_cli']:>10.2f}")
    print(f"{'plan, 200 steps (library)':<28}{seconds['plan_200_steps_library']:>10.3f}")
    for name, value in rss.items():
        print(f"{'peak RSS ' + name:<28}{value:>10} MB")


if __name__ == "__main__":
    main()
