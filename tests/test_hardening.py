"""Hardening (issue 6): what users do wrong, or what goes wrong around them, on real files and the real CLI.

Every failing case must end with one clear ``error:`` line that names the file (or option) and the fix, a
documented exit code (docs/cli.md, "Exit codes"), no traceback, and no partial or corrupted output: no
``*.partial`` temporary files, no half set of stems, no empty output folders. Hard but valid inputs must
succeed with exact lengths, rates and channels.

Cost: a spawned CLI pays ~3 s for importing torch. Cases that only need one process each (option, model,
output and eval errors) run through :func:`run_cli_many`: one Python process imports sgnsep once, then forks
one child per case that runs the console-script entry point ``sgnsep.cli.main()`` with its own argv, stdout,
stderr and exit status, exactly as ``python -m sgnsep`` does. Signals, resource limits, the Hub and training
run as separate ``python -m sgnsep`` processes.

``FUZZ_SECONDS`` sets the budget of the fuzz test (default 15 s).
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sgnsep import Separator
from sgnsep.audio import audio_io
from sgnsep.core.errors import OutputError, SgnsepError
from tests.tone_model import CLASSES, TINY, TINY_AUDIO, tone

REPO = Path(__file__).resolve().parent.parent
TINY_MODEL = {k: getattr(TINY, k) for k in ("unet_ngf", "embed_dim", "depth", "num_heads", "patch_size", "unet_depth")}
TINY_AUDIO_D = {k: getattr(TINY_AUDIO, k) for k in ("segment_samples", "n_fft", "warp_bins")}


# --- running the CLI ------------------------------------------------------------------------------------------


def cli_env(extra: dict | None = None) -> dict:
    """This checkout first on PYTHONPATH (an editable install may point elsewhere), one thread per process."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def _default_signals():
    # A test runner started in the background may ignore SIGINT; then Python would never raise KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def run_cli(*args, env=None, timeout=300, preexec_fn=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sgnsep", *map(str, args)], capture_output=True, text=True, env=cli_env(env),
        timeout=timeout, preexec_fn=preexec_fn, cwd=cwd,
    )


def popen_cli(*args, env=None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sgnsep", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=cli_env(env), preexec_fn=_default_signals,
    )


_FORK_DRIVER = r"""
import json, os, sys
spec = json.loads(sys.stdin.read())
import torch, sgnsep, sgnsep.cli, sgnsep.separation.separator, sgnsep.evaluation.evaluate  # the slow imports, once
codes = []
for i, case in enumerate(spec["cases"]):
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            os.chdir(case["cwd"])
            os.environ.update(case["env"])
            for fd, name in ((1, "out"), (2, "err")):
                os.dup2(os.open(os.path.join(spec["dir"], f"{i}.{name}"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            sys.argv = ["sgnsep", *case["args"]]
            try:
                sgnsep.cli.main()
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
print(json.dumps({"codes": codes, "sgnsep": sgnsep.__file__}))
"""


def run_cli_many(cases: list[list], workdir: Path, *, env: dict | None = None, cwd: Path | None = None,
                 preexec_fn=None):
    """Run many ``sgnsep`` command lines, each in its own forked process, after one import of sgnsep.

    Returns a list of CompletedProcess (args, returncode, stdout, stderr) in the order of ``cases``.
    ``preexec_fn`` runs in the process that forks them (e.g. to drop privileges for all of them).
    """
    if not hasattr(os, "fork"):
        return [run_cli(*args, env=env, cwd=cwd, preexec_fn=preexec_fn) for args in cases]
    logs = workdir / "cli-logs"
    logs.mkdir(parents=True, exist_ok=True)
    spec = {
        "dir": str(logs),
        "cases": [{"args": [str(a) for a in args], "cwd": str(cwd or workdir), "env": env or {}} for args in cases],
    }
    r = subprocess.run(
        [sys.executable, "-c", _FORK_DRIVER], input=json.dumps(spec), capture_output=True, text=True,
        env=cli_env(), timeout=600, preexec_fn=preexec_fn,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert Path(result["sgnsep"]).resolve().is_relative_to(REPO), f"imported {result['sgnsep']}, not this checkout"
    return [
        subprocess.CompletedProcess(
            args, code, (logs / f"{i}.out").read_text(errors="replace"), (logs / f"{i}.err").read_text(errors="replace")
        )
        for i, (args, code) in enumerate(zip(cases, result["codes"]))
    ]


def assert_clean_failure(r: subprocess.CompletedProcess, code: int, *phrases: str, one_line: bool = True) -> None:
    """Exit ``code``, no traceback, and one ``error:`` line holding every phrase (file name, fix)."""
    where = f"\n$ sgnsep {' '.join(map(str, r.args))}\n--- stderr:\n{r.stderr}"
    assert r.returncode == code, f"exit {r.returncode}, expected {code}{where}"
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, where
    if one_line:
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        assert any(all(p in ln for p in phrases) for ln in lines), f"no error line with {phrases}{where}"
    else:
        assert all(p in r.stderr for p in phrases), f"missing {phrases}{where}"


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def partials(folder: Path) -> list[Path]:
    return [p for p in files_under(folder) if p.name.endswith(".partial")]


# --- inputs the tests write -----------------------------------------------------------------------------------


def tones(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (tone("low", seconds, sr, rng) + tone("high", seconds, sr, rng)).astype(np.float32)


def wav_bytes(x: np.ndarray, sr: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def streamed_flac(x: np.ndarray, sr: int) -> bytes:
    """A FLAC whose STREAMINFO does not give the length (total samples 0), as a piped encoder writes it."""
    data = bytearray(wav_bytes(x, sr, "FLAC", "PCM_16"))
    field = int.from_bytes(data[18:26], "big") & ~((1 << 36) - 1)  # rate, channels, bits | 36-bit total
    data[18:26] = field.to_bytes(8, "big")
    return bytes(data)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Good, bad and hard-but-valid audio files, written once for the module."""
    d = tmp_path_factory.mktemp("media")
    good = tones(2.0, 11025)
    sf.write(d / "good1.wav", good, 11025)
    sf.write(d / "good2.flac", np.stack([tones(2.0, 22050, 1), tones(2.0, 22050, 2)], 1), 22050)
    # Bad inputs.
    (d / "text.wav").write_text("this is not audio, whatever the extension says\n")
    (d / "take [live].wav").write_text("not audio either; the brackets must print as they are")
    (d / "header.wav").write_bytes(wav_bytes(good, 11025)[:30])
    flac = wav_bytes(tones(6.0, 22050), 22050, "FLAC")
    (d / "cut.flac").write_bytes(flac[: len(flac) // 2])
    sf.write(d / "empty.wav", np.zeros((0, 1), np.float32), 11025)
    nan = good.copy()
    nan[100] = np.nan
    sf.write(d / "nan.wav", nan, 11025, subtype="FLOAT")
    late = np.tile(good, 20)  # 40 s; an infinity at 30 s: stems are half written when it is found
    late[30 * 11025] = np.inf
    sf.write(d / "inf_late.wav", late, 11025, subtype="FLOAT")
    sf.write(d / "odd_rate.wav", tones(1.0, 44101), 44101)
    sf.write(d / "loud.wav", np.where(np.arange(len(good)) % 7 == 0, 3e38, 0).astype(np.float32), 11025, subtype="FLOAT")
    (d / "streamed.flac").write_bytes(streamed_flac(good, 11025))
    # Hard but valid.
    sf.write(d / "silent.wav", np.zeros((2 * 11025, 2), np.float32), 11025)
    sf.write(d / "clipped.wav", np.clip(8 * good, -1, 1), 11025, subtype="PCM_16")
    sf.write(d / "ch10.wav", np.stack([tones(1.5, 16000, c) * (c + 1) / 10 for c in range(10)], 1), 16000)
    sf.write(d / "rate8k.wav", tones(2.0, 8000), 8000)
    sf.write(d / "rate192k.flac", tones(1.0, 192000), 192000, subtype="PCM_24")
    sf.write(d / "one.wav", np.array([[0.25]], np.float32), 11025)
    sf.write(d / "long8k.wav", np.tile(tones(10.0, 8000, 3), 18), 8000, subtype="PCM_16")  # 3 minutes
    return d


@pytest.fixture(scope="module")
def sep(tone_model_dir):
    return Separator(tone_model_dir, device="cpu")


# --- inputs ---------------------------------------------------------------------------------------------------


def test_a_batch_of_bad_inputs_names_each_file_and_keeps_the_good_ones(tone_model_dir, media, tmp_path):
    out = tmp_path / "out"
    bad = {
        "gone [/b].wav": "no such file",
        "text.wav": "not a readable audio file",
        "take [live].wav": "not a readable audio file",
        "header.wav": "not a readable audio file",
        "cut.flac": "re-download",
        "empty.wav": "holds no audio",
        "nan.wav": "NaN or infinite samples (first at sample 100)",
        "inf_late.wav": "NaN or infinite samples (first at sample 330750)",
        "odd_rate.wav": "44101 Hz",
        "loud.wav": "too large to process (peak 3e+38",
        "streamed.flac": "does not say how long",
    }
    inputs = [media / "good1.wav", *(media / name for name in bad), media / "good2.flac"]
    r = run_cli("separate", *inputs, "-s", "low,high", "-m", tone_model_dir, "-o", out, "--residual",
                "--chunk-seconds", "5", "--json")
    assert r.returncode == 3, r.stderr  # every failure is an input error: exit 3
    for name, phrase in bad.items():
        assert_clean_failure(r, 3, f"{media / name}", phrase)
        assert f"failed: {media / name}:" in r.stderr  # and in the summary
    assert f"2 of {len(inputs)} files separated, {len(bad)} failed." in r.stderr
    manifest = json.loads(r.stdout)
    assert {Path(f["input"]).name for f in manifest["files"]} == {"good1.wav", "good2.flac"}
    assert {f["input"] for f in manifest["failures"]} == {str(media / name) for name in bad}
    assert all(f["exit_code"] == 3 for f in manifest["failures"])
    # The good ones are complete; the bad ones left nothing, not even an empty folder.
    track_dirs = sorted(p.name for p in (out / "tone-tiny").iterdir())
    assert track_dirs == ["good1", "good2"]
    for track in track_dirs:
        assert sorted(p.name for p in (out / "tone-tiny" / track).iterdir()) == ["high.wav", "low.wav", "residual.wav"]
    assert not partials(out)


def test_mixed_failures_exit_1_and_existing_outputs_are_never_overwritten(tone_model_dir, media, tmp_path):
    out = tmp_path / "out"
    r = run_cli("separate", media / "good1.wav", "-s", "low", "-m", tone_model_dir, "-o", out)
    assert r.returncode == 0, r.stderr
    stem = out / "tone-tiny" / "good1" / "low.wav"
    before = stem.read_bytes()
    r = run_cli("separate", media / "good1.wav", media / "text.wav", "-s", "low", "-m", tone_model_dir, "-o", out)
    assert_clean_failure(r, 1, f"{media / 'good1.wav'}", "already exist", "--overwrite")  # 4 and 3 -> 1
    assert_clean_failure(r, 1, f"{media / 'text.wav'}", "not a readable audio file")
    assert "0 of 2 files separated, 2 failed." in r.stderr
    assert stem.read_bytes() == before
    assert not partials(out)


def test_hard_but_valid_inputs_succeed_with_exact_shapes(tone_model_dir, media, tmp_path):
    out = tmp_path / "out"
    names = ["silent.wav", "clipped.wav", "ch10.wav", "rate8k.wav", "rate192k.flac", "one.wav", "long8k.wav"]
    maxrss_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    r = run_cli("separate", *(media / n for n in names), "-s", "low,high", "-m", tone_model_dir, "-o", out,
                "--residual", "--json")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    # ru_maxrss of children is the largest child so far (KiB on Linux): no child came near 2 GiB, the long file
    # included (it is streamed in chunks; see also test_long_files_are_read_in_bounded_chunks).
    if sys.platform.startswith("linux"):
        assert max(maxrss_before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) < 2 * 1024 * 1024
    manifest = json.loads(r.stdout)
    assert manifest["failures"] == [] and len(manifest["files"]) == len(names)
    for name in names:
        mix, rate = sf.read(media / name, always_2d=True, dtype="float32")
        stems = {}
        for cls in ("low", "high", "residual"):
            path = out / "tone-tiny" / Path(name).stem / f"{cls}.wav"
            info = sf.info(path)
            assert (info.samplerate, info.channels, info.frames) == (rate, mix.shape[1], mix.shape[0]), (name, cls)
            stems[cls], _ = sf.read(path, always_2d=True, dtype="float32")
            assert np.isfinite(stems[cls]).all(), (name, cls)
        total = stems["low"] + stems["high"] + stems["residual"]
        assert np.abs(total - mix).max() < 1e-4, name  # float32 outputs add back up to the input
        if name == "silent.wav":
            assert all(not s.any() for s in stems.values())  # silent in, silent out, no NaN
    assert not partials(out)


def test_long_files_are_read_in_bounded_chunks(sep, media, tmp_path, monkeypatch):
    """Memory: a 3-minute file is never read (nor processed) whole; the output length is exact."""
    reads = []
    real = audio_io.read_block

    def spy(path, start, stop):
        reads.append(stop - start)
        return real(path, start, stop)

    monkeypatch.setattr(audio_io, "read_block", spy)
    sep_small = Separator(sep.folder, device="cpu", chunk_seconds=20.0)
    res = sep_small.separate_file(media / "long8k.wav", "low", out_dir=tmp_path)
    total = sf.info(media / "long8k.wav").frames
    assert sf.info(res.outputs["low"]).frames == total == 180 * 8000
    assert len(reads) > 5 and max(reads) < total / 3


# --- options --------------------------------------------------------------------------------------------------


def test_option_errors_are_usage_errors_that_name_the_option(tone_model_dir, media, tmp_path):
    src = media / "good1.wav"
    base = ["separate", src, "-m", tone_model_dir]
    cases = [  # (extra args, out folder name, exit code, phrases)
        (["-s", ""], "e1", 2, ["class list is empty", "--sources low,high"]),
        (["-s", "low,low"], "e2", 2, ["'low' is asked for twice"]),
        (["-s", "low,LOW"], "e3", 2, ["'low' is asked for twice"]),
        (["-s", "low,,high"], "e4", 2, ["empty entry"]),
        (["-s", "hihg"], "e5", 2, ["no class 'hihg'", "Did you mean 'high'?", "low, high, hiss"]),
        (["-s", "violin"], "e6", 2, ["no class 'violin'", "Its classes: low, high, hiss"]),
        (["-s", "low", "--overlap", "1"], "e7", 2, ["--overlap must be in [0, 1)"]),
        (["-s", "low", "--overlap", "-0.5"], "e8", 2, ["--overlap must be in [0, 1)"]),
        (["-s", "low", "--overlap", "nan"], "e9", 2, ["--overlap must be in [0, 1)"]),
        (["-s", "low", "--chunk-seconds", "0"], "e10", 2, ["--chunk-seconds must be a positive number"]),
        (["-s", "low", "--chunk-seconds", "-3"], "e11", 2, ["--chunk-seconds must be a positive number"]),
        (["-s", "low", "--chunk-seconds", "inf"], "e12", 2, ["--chunk-seconds must be a positive number"]),
        (["-s", "low", "--batch-size", "0"], "e13", 2, ["--batch-size must be at least 1"]),
        (["-s", "low", "--ext", "mp3"], "e14", 2, ["'mp3' is not supported", "wav, flac"]),
        (["-s", "low", "--ext", ""], "e15", 2, ["is not supported", "wav, flac"]),
        (["-s", "low", "--bit-depth", "8"], "e16", 2, ["Bit depth 8 is not available for wav", "16, 24, 32"]),
        (["-s", "low", "--ext", "flac", "--bit-depth", "32"], "e17", 2, ["Bit depth 32 is not available for flac"]),
        (["-s", "low", "--name", "{nope}.{ext}"], "e18", 2, ["Bad --name template", "{source}"]),
        (["-s", "low,high", "--name", "x.{ext}"], "e19", 2, ["same file name", "{source}"]),
        (["-s", "low", "--device", "gpu"], "e20", 2, ["Unknown device 'gpu'", "cpu"]),
    ]
    if not torch.cuda.is_available():
        cases.append((["-s", "low", "--device", "cuda"], "e21", 6, ["CUDA is not available", "--device cpu"]))
    ok_cases = [  # once crashed or misnamed outputs
        (["-s", "low", "--chunk-seconds", "1e308"], "ok1"),
        (["-s", "low", "--ext", ".WAV"], "ok2"),
    ]
    runs = run_cli_many(
        [base + args + ["-o", tmp_path / d] for args, d, _, _ in cases]
        + [base + args + ["-o", tmp_path / d] for args, d in ok_cases]
        + [base + ["-s", "low", "--batch-size", "abc", "-o", tmp_path / "e99"]],
        tmp_path,
    )
    for (args, d, code, phrases), r in zip(cases, runs):
        assert_clean_failure(r, code, *phrases)
        assert not (tmp_path / d).exists(), args  # nothing is created before the options are checked
    for (args, d), r in zip(ok_cases, runs[len(cases):]):
        assert r.returncode == 0, r.stderr
        assert [p.name for p in files_under(tmp_path / d)] == ["low.wav"], args
    assert_clean_failure(runs[-1], 2, "--batch-size", one_line=False)  # click's own usage error


# --- outputs --------------------------------------------------------------------------------------------------


def test_output_errors_are_exit_4_and_leave_nothing(tone_model_dir, media, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("a regular file where a folder would have to be")
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    cases = [  # (input, extra args, exit code, phrases)
        (media / "good1.wav", ["-o", blocker / "out"], 4, ["Cannot create the output folder", "Not a directory", "--out"]),
        (media / "ch10.wav", ["--ext", "flac", "-o", tmp_path / "flac10"], 4,
         [f"{tmp_path / 'flac10'}", "10 channels", "at most 8 channels", "--ext wav"]),
    ]
    if os.geteuid() != 0:  # chmod does not stop root; the regular-file case above covers it there
        cases.append((media / "good1.wav", ["-o", readonly], 4, ["Cannot", f"{readonly}"]))
    try:
        runs = run_cli_many(
            [["separate", src, "-s", "low", "-m", tone_model_dir, *extra] for src, extra, _, _ in cases], tmp_path
        )
    finally:
        readonly.chmod(0o755)
    for (_, _, code, phrases), r in zip(cases, runs):
        assert_clean_failure(r, code, *phrases)
    assert not (tmp_path / "flac10").exists() and files_under(readonly) == []
    assert blocker.read_text().startswith("a regular file")


def test_a_full_disk_is_an_output_error_and_removes_everything(sep, media, tmp_path, monkeypatch):
    """In-process: the disk fills up (ENOSPC from libsndfile's writes) in the second chunk, with both stems
    half written. (AtomicAudioWriter.write is the layer that turns such errors into OutputError.)"""
    calls = {"n": 0}
    real_write = sf.SoundFile.write

    def write(self, data):
        calls["n"] += 1
        if calls["n"] >= 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(self, data)

    monkeypatch.setattr(sf.SoundFile, "write", write)
    small = Separator(sep.folder, device="cpu", chunk_seconds=5.0)
    out = tmp_path / "out"
    with pytest.raises(OutputError) as e:
        small.separate_file(media / "long8k.wav", "low,high", out_dir=out)
    text = str(e.value)
    assert "No space left on device" in text and "free disk space" in text
    assert str(out / "tone-tiny" / "long8k") in text and e.value.exit_code == 4
    assert files_under(out) == [] and not out.exists()  # no stems, no .partial, no empty folders


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE semantics")
def test_a_file_size_limit_fails_cleanly_even_when_it_hits_on_close(tone_model_dir, media, tmp_path):
    """RLIMIT_FSIZE makes writes fail with EFBIG (Python ignores SIGXFSZ). FLAC writes its last frame when
    the file is closed and libsndfile ignores errors there: a truncated FLAC must not be committed."""
    args = ["separate", media / "good1.wav", "-s", "low", "-m", tone_model_dir, "--ext", "flac", "--bit-depth", "16"]
    r = run_cli(*args, "-o", tmp_path / "free")
    assert r.returncode == 0, r.stderr
    size = (tmp_path / "free" / "tone-tiny" / "good1" / "low.flac").stat().st_size
    wav_args = ["separate", media / "good1.wav", "-s", "low", "-m", tone_model_dir]
    for label, cmd, limit in (("flac", args, size - 200), ("wav", wav_args, 20000)):
        out = tmp_path / label

        def limited(limit=limit):
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        r = run_cli(*cmd, "-o", out, preexec_fn=limited)
        assert_clean_failure(r, 4, f"{out / 'tone-tiny' / 'good1' / 'low.'}", "failed", "Check free disk space")
        assert files_under(out) == [] and not out.exists(), label


@pytest.mark.parametrize("sig,word", [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated")])
def test_ctrl_c_and_sigterm_mid_file_exit_130_and_remove_partial_outputs(tone_model_dir, tmp_path, sig, word):
    src = tmp_path / "long.wav"
    sf.write(src, np.tile(tones(10.0, 11025, 5), 18), 11025, subtype="PCM_16")  # 3 minutes, small chunks: busy
    out = tmp_path / "out"
    p = popen_cli("separate", src, "-s", "low,high,hiss", "--residual", "-m", tone_model_dir, "-o", out,
                  "--chunk-seconds", "0.5")
    try:
        deadline = time.monotonic() + 120
        while not partials(out) and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert p.poll() is None, f"finished before it could be interrupted: {p.communicate()[1]}"
        assert partials(out), "no temporary output appeared"
        p.send_signal(sig)
        _, stderr = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, stderr
    assert f"{word} while processing {src}; its partial outputs were removed." in stderr.replace("\n", " ")
    assert "Traceback" not in stderr
    assert files_under(out) == []  # no stems, no .partial files


def interrupt_as_the_nth_temporary_file_is_created(monkeypatch, nth: int) -> dict:
    """Raise KeyboardInterrupt the moment ``os.open`` has created the nth ``*.partial`` file: where a Ctrl-C or
    SIGTERM lands when it arrives during that system call (Python runs signal handlers between bytecodes).
    The signal test above hit this window in CI by chance; this one hits it every time."""
    real_open = os.open
    seen = {"n": 0}

    def opening(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if str(path).endswith(".partial"):
            seen["n"] += 1
            if seen["n"] == nth:
                os.close(fd)
                raise KeyboardInterrupt
        return fd

    monkeypatch.setattr(os, "open", opening)
    return seen


@pytest.mark.parametrize("nth", [1, 2, 3, 4], ids=["first-stem", "second-stem", "third-stem", "residual"])
def test_an_interrupt_as_any_temporary_stem_is_created_leaves_nothing(sep, media, tmp_path, monkeypatch, nth):
    seen = interrupt_as_the_nth_temporary_file_is_created(monkeypatch, nth)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        sep.separate_file(media / "good1.wav", "low,high,hiss", out_dir=out, residual=True)
    assert seen["n"] == nth
    assert files_under(out) == [] and not out.exists()


@pytest.mark.parametrize("nth", [1, 4], ids=["first-stem", "residual"])
def test_an_interrupt_as_a_stem_is_renamed_into_place_removes_the_whole_set(sep, media, tmp_path, monkeypatch, nth):
    """Stems are renamed into place one after another at the end; an interrupt that lands right after one of
    those renames (before any bookkeeping after it) must still take every stem of the set away."""
    real_replace = os.replace
    seen = {"n": 0}

    def replacing(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        seen["n"] += 1
        if seen["n"] == nth:
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", replacing)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        sep.separate_file(media / "good1.wav", "low,high,hiss", out_dir=out, residual=True)
    assert seen["n"] == nth
    assert files_under(out) == [] and not out.exists()


@pytest.mark.parametrize("writer", ["write_audio", "write_bytes_atomic", "save_checkpoint", "remix"])
def test_an_interrupt_as_any_other_output_is_created_leaves_no_temporary_file(sep, media, tmp_path, monkeypatch, writer):
    from sgnsep.separation import remix
    from sgnsep.core.atomic_write import write_bytes_atomic
    from sgnsep.models.checkpoint import save_checkpoint

    stems = sep.separate_file(media / "good1.wav", "low,high", out_dir=tmp_path / "stems").outputs
    write = {
        "write_audio": lambda: audio_io.write_audio(tmp_path / "a.wav", tones(0.5, 11025)[None], 11025),
        "write_bytes_atomic": lambda: write_bytes_atomic(tmp_path / "a.json", b"{}"),
        "save_checkpoint": lambda: save_checkpoint(tmp_path / "ckpt", sep.model, sep.meta),
        "remix": lambda: remix.write_remix(media / "good1.wav", stems, {"low": -6.0}, tmp_path / "mix.wav"),
    }[writer]
    before = set(files_under(tmp_path))
    interrupt_as_the_nth_temporary_file_is_created(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        write()
    assert set(files_under(tmp_path)) == before


def test_a_checkpoint_that_cannot_be_flushed_is_an_output_error_and_leaves_nothing(sep, tmp_path, monkeypatch):
    """Checkpoints and training state are fsynced before the rename; a full disk shows up there."""
    from sgnsep.models.checkpoint import save_checkpoint

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError) as e:
        save_checkpoint(tmp_path / "ckpt", sep.model, sep.meta)
    assert str(tmp_path / "ckpt" / "model.safetensors") in str(e.value) and "No space left" in str(e.value)
    assert e.value.exit_code == 4 and files_under(tmp_path) == []


# --- models ---------------------------------------------------------------------------------------------------


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_broken_models_are_exit_5_and_pickles_are_never_loaded(tone_model_dir, media, tmp_path):
    src = Path(tone_model_dir)
    models = {}
    for name in ("no-config", "no-weights", "mismatch", "truncated", "pickle"):
        models[name] = tmp_path / name
        models[name].mkdir()
        if name != "no-config":
            (models[name] / "config.json").write_bytes((src / "config.json").read_bytes())
        if name not in ("no-weights", "truncated", "pickle"):
            (models[name] / "model.safetensors").write_bytes((src / "model.safetensors").read_bytes())
    cfg = json.loads((src / "config.json").read_text())
    cfg["model"]["embed_dim"] = 32
    (models["mismatch"] / "config.json").write_text(json.dumps(cfg))
    weights = (src / "model.safetensors").read_bytes()
    (models["truncated"] / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    marker = tmp_path / "UNPICKLED"
    (models["pickle"] / "model.safetensors").write_bytes(pickle.dumps({"state": _Payload(marker)}))
    expected = {
        "no-config": ["has no config.json", "sgnsep train"],
        "no-weights": ["model.safetensors are missing", "re-download or re-train"],
        "mismatch": ["do not match its config.json", "mis-shaped", "re-download or re-train"],
        "truncated": ["is not a readable safetensors file", "truncated"],
        "pickle": ["is not a readable safetensors file", "never loads pickle files"],
        "file": ["is a file", "Pass the folder"],
    }
    models["file"] = src / "model.safetensors"
    runs = run_cli_many(
        [["separate", media / "good1.wav", "-s", "low", "-m", models[k], "-o", tmp_path / "out"] for k in expected],
        tmp_path,
    )
    for (name, phrases), r in zip(expected.items(), runs):
        assert_clean_failure(r, 5, f"{models[name]}", *phrases)
    assert not marker.exists(), "the pickle was unpickled"
    assert not (tmp_path / "out").exists()


def test_hub_unreachable_without_a_cache_is_exit_5_quickly(media, tmp_path):
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_CACHE": str(tmp_path / "empty-cache"),
           "HF_HUB_OFFLINE": "0", "NO_PROXY": "127.0.0.1,localhost"}
    started = time.monotonic()
    r = run_cli("separate", media / "good1.wav", "-s", "low", "-m", "acme/not-cached@v1", "-o", tmp_path / "out", env=env)
    took = time.monotonic() - started
    assert_clean_failure(r, 5, "Cannot reach the Hugging Face Hub", "acme/not-cached", "sgnsep pull")
    assert took < 30, f"took {took:.0f} s"
    assert not (tmp_path / "out").exists()


# --- training -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def solos(tmp_path_factory):
    """3 classes x 4 clips with explicit splits, plus a corrupt and a non-audio file in the training split."""
    root = tmp_path_factory.mktemp("solos")
    rng = np.random.default_rng(0)
    clips = []
    for cls in CLASSES:
        (root / cls).mkdir()
        for i, split in enumerate(("train", "train", "val", "test")):
            sf.write(root / cls / f"{cls}{i}.wav", tone(cls, 3.0, 11025, rng), 11025)
            clips.append({"path": f"{cls}/{cls}{i}.wav", "split": split})
    (root / "low" / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    (root / "high" / "notes.flac").write_text("not audio")
    clips += [{"path": "low/corrupt.wav", "split": "train"}, {"path": "high/notes.flac", "split": "train"}]
    (root / "metadata.json").write_text(json.dumps({"clips": clips}))
    return root


def train_args(solos, out, *sets):
    return [
        "train", "--dataset", "solos", "--data-dir", solos, "--out", out, "--device", "cpu",
        "--set", "batch_size=2", "--set", "val_mixtures=2", "--set", "epochs=1",
        "--set", f"model={json.dumps(TINY_MODEL)}", "--set", f"audio={json.dumps(TINY_AUDIO_D)}",
        *[x for s in sets for x in ("--set", s)],
    ]


def test_training_killed_then_resumed_loses_at_most_one_interval(solos, tmp_path):
    run = tmp_path / "run"
    args = train_args(solos, run, "steps_per_epoch=12", "checkpoint_every=3", "optimizer=adam", "lr=0.003")
    p = popen_cli(*args)
    try:
        deadline = time.monotonic() + 180
        while p.poll() is None and time.monotonic() < deadline:
            state = run / "state.json"
            try:
                if state.exists() and json.loads(state.read_text())["step"] >= 3:
                    break
            except (json.JSONDecodeError, KeyError):
                pass
            time.sleep(0.02)
        assert p.poll() is None, f"the run ended before it was killed: {p.communicate()[1]}"
        time.sleep(0.3)
        p.kill()  # SIGKILL: no cleanup at all
        _, stderr = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    # The dataset's bad files were reported, by name, and training went on without them.
    assert "skipped 2 unusable file(s)" in stderr and "corrupt.wav" in stderr and "notes.flac" in stderr
    logged = [int(row.split(",")[0]) for row in (run / "log.csv").read_text().splitlines()[1:]]
    saved = json.loads((run / "state.json").read_text())["step"]
    assert saved % 3 == 0 and max(logged) - saved <= 3  # lost at most one checkpoint interval
    # A kill in the middle of a checkpoint write leaves its temporary file (named with the killed writer's
    # process id, or by older versions without one); resuming clears such leftovers.
    from sgnsep.core.atomic_write import HOST_TAG

    stale = [run / f".state.safetensors.{p.pid}-{HOST_TAG}-0badc0de.partial",
             run / "last" / f".model.safetensors.{p.pid}-{HOST_TAG}-0badc0de.partial",
             run / ".log.csv.0123456789abcdef.partial"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    r = run_cli(*args, "--resume")
    assert r.returncode == 0, r.stderr
    assert not any(path.exists() for path in stale)
    assert not list(run.rglob("*.partial"))
    assert "trained 12 steps" in r.stderr
    assert json.loads((run / "state.json").read_text())["step"] == 12
    assert json.loads((run / "last" / "config.json").read_text())["training"]["steps"] == 12
    logged = [int(row.split(",")[0]) for row in (run / "log.csv").read_text().splitlines()[1:]]
    assert logged == list(range(1, 13))  # the redone steps are logged once


@pytest.mark.parametrize("every", [4, 1], ids=["loss-check", "checkpoint-check"])
def test_training_that_diverges_exits_7_without_writing_a_checkpoint(solos, tmp_path, every):
    """lr=1e30 blows the weights up in one step; the next loss is NaN (checked before each update) or, when a
    checkpoint is due right away, the weights or the validation outputs are (checked before writing it)."""
    run = tmp_path / "run"
    r = run_cli(*train_args(solos, run, "steps_per_epoch=6", f"checkpoint_every={every}", "lr=1e30"))
    assert_clean_failure(r, 7, "no checkpoint was written", "lower learning rate (--set lr=")
    assert not (run / "last").exists() and not (run / "best").exists() and not (run / "state.safetensors").exists()


# --- eval -----------------------------------------------------------------------------------------------------


def test_eval_mismatched_missing_short_and_silent_stems(tone_model_dir, tmp_path):
    rng = np.random.default_rng(0)
    low, high = tone("low", 3.0, 11025, rng), tone("high", 3.0, 11025, rng)
    layouts = {
        "mismatched": {"t1": {"low": low, "high": high[:20000]}},
        "unknown": {"t1": {"violin": low, "cello": high}},
        "short": {"t1": {"low": low[:100], "high": high[:100]}},
        "silent": {"t1": {"low": low, "high": np.zeros_like(high)}, "t2": {"low": low, "high": high}},
    }
    for layout, tracks in layouts.items():
        for track, stems in tracks.items():
            (tmp_path / layout / track).mkdir(parents=True)
            for name, data in stems.items():
                sf.write(tmp_path / layout / track / f"{name}.wav", data, 11025)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    base = ["eval", "-m", tone_model_dir, "--metrics", "sdr,sir,sar,si-sdr", "--data-dir"]
    runs = run_cli_many([
        base + [tmp_path / "mismatched"],
        base + [tmp_path / "unknown"],
        base + [tmp_path / "short"],
        base + [tmp_path / "silent", "--out", tmp_path / "r.json", "--csv", tmp_path / "r.csv"],
        base + [tmp_path / "silent", "--out", blocker / "r.json"],
    ], tmp_path)
    assert_clean_failure(runs[0], 3, f"{tmp_path / 'mismatched' / 't1'}", "different lengths", "same time span")
    assert_clean_failure(runs[1], 2, f"{tmp_path / 'unknown'}", "Nothing to evaluate", "low, high, hiss")
    assert_clean_failure(runs[2], 3, f"{tmp_path / 'short' / 't1'}", "too short", "a second or more")
    assert runs[3].returncode == 0, runs[3].stderr
    assert "silent cases excluded from means" in runs[3].stdout
    report = json.loads((tmp_path / "r.json").read_text())  # strict JSON: no NaN anywhere
    silent = [r for r in report["records"] if r["track"] == "t1" and r["class"] == "high"]
    assert silent and all(r["status"] == "silent_reference" and r["sdr"] is None for r in silent)
    assert all(math.isfinite(r["sdr"]) for r in report["records"] if r["status"] == "ok")
    assert (tmp_path / "r.csv").read_text().startswith("track,class,method,status")
    assert_clean_failure(runs[4], 4, f"{blocker / 'r.json'}", "Cannot write")
    assert not partials(tmp_path)


# --- fuzz -----------------------------------------------------------------------------------------------------


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    data = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):
        op = int(rng.integers(0, 6))
        if op == 0 and data:  # flip a bit anywhere
            i = int(rng.integers(len(data)))
            data[i] ^= 1 << int(rng.integers(8))
        elif op == 1 and data:  # a random byte in the header
            data[int(rng.integers(min(len(data), 64)))] = int(rng.integers(256))
        elif op == 2:  # truncate
            data = data[: int(rng.integers(len(data) + 1))]
        elif op == 3:  # insert junk
            i = int(rng.integers(len(data) + 1))
            data[i:i] = rng.bytes(int(rng.integers(1, 16)))
        elif op == 4 and len(data) > 8:  # an extreme 32-bit header field (rates, sizes, counts)
            i = int(rng.integers(min(len(data) - 4, 60)))
            value = int(rng.choice([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, int(rng.integers(1 << 32))]))
            data[i : i + 4] = value.to_bytes(4, "little")
        elif op == 5 and data:  # delete a range
            i = int(rng.integers(len(data)))
            del data[i : i + int(rng.integers(1, 64))]
    return bytes(data)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy overflow warnings on absurd sample values
def test_fuzz_audio_reading_and_separation(sep, tmp_path):
    """Random and mutated wav/flac/ogg files: probe, read_audio and separate_file either succeed or raise
    SgnsepError, and never leave a temporary file. FUZZ_SECONDS sets the time budget (default 15 s)."""
    budget = float(os.environ.get("FUZZ_SECONDS", "15"))
    seed = int(os.environ.get("FUZZ_SEED", "0"))
    rng = np.random.default_rng(seed)
    seeds = {}
    for sr, ch, n in ((8000, 1, 4000), (11025, 2, 3000), (44100, 1, 2000)):
        x = (0.3 * rng.standard_normal((n, ch))).astype(np.float32)
        for fmt, subtype, ext in (("WAV", "PCM_16", "wav"), ("WAV", "FLOAT", "wav"), ("WAV", "PCM_24", "wav"),
                                  ("FLAC", "PCM_16", "flac"), ("OGG", "VORBIS", "ogg")):
            seeds[f"{sr}-{ch}-{subtype}.{ext}"] = wav_bytes(x, sr, fmt, subtype)
    names = sorted(seeds)
    small = Separator(sep.folder, device="cpu", chunk_seconds=2.0)
    failures, outcomes, tried = [], {"ok": 0, "error": 0}, 0
    started = time.monotonic()
    while time.monotonic() - started < budget:
        if rng.random() < 0.1:
            ext, data = str(rng.choice([".wav", ".flac", ".ogg"])), rng.bytes(int(rng.integers(0, 2000)))
        else:
            name = names[int(rng.integers(len(names)))]
            ext, data = Path(name).suffix, _mutate(seeds[name], rng)
        path = tmp_path / f"case{tried}{ext}"
        path.write_bytes(data)
        out = tmp_path / f"out{tried}"
        for what, call in (
            ("probe", lambda path=path: audio_io.probe(path)),
            ("read_audio", lambda path=path: audio_io.read_audio(path)),
            ("separate_file", lambda path=path, out=out: small.separate_file(path, "low,high", out_dir=out, residual=True)),
        ):
            case_started = time.monotonic()
            try:
                result = call()
                if what == "separate_file":  # what was written is complete and finite
                    frames = audio_io.probe(path).frames
                    for stem in result.outputs.values():
                        data, _ = sf.read(stem, dtype="float32")
                        if len(data) != frames or not np.isfinite(data).all():
                            failures.append(f"case {tried}: {stem} has {len(data)} of {frames} samples or NaN")
                outcomes["ok"] += 1
            except SgnsepError:
                outcomes["error"] += 1
            except Exception as exc:  # noqa: BLE001 - anything else is a bug
                keep = tmp_path / "kept" / f"case{tried}{ext}"
                keep.parent.mkdir(exist_ok=True)
                keep.write_bytes(data)
                failures.append(f"{what} on {keep}: {type(exc).__name__}: {exc}")
            if time.monotonic() - case_started > 20:
                failures.append(f"{what} on case {tried} took {time.monotonic() - case_started:.0f} s")
        if partials(out):
            failures.append(f"case {tried}: temporary files left: {partials(out)}")
        shutil.rmtree(out, ignore_errors=True)
        path.unlink()
        tried += 1
    print(f"fuzz: {tried} inputs in {time.monotonic() - started:.0f} s (seed {seed}); calls {outcomes}")
    assert tried >= 20
    assert not failures, "\n".join(failures[:20])
