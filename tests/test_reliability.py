"""Reliability round 2 (issue 24): what a hostile user or a faulty machine does, through the real CLI.

Each test reproduces one failure of the issue's probe (writes outside --out, a poisoned Hub cache, leftovers
after signals, concurrent runs, replaced user files, settings checked too late, hangs, misleading messages)
and checks that it now ends in one clear ``error:`` line with the documented exit code, or works, and that
nothing is written outside the folders the command owns.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.test_hardening import (  # noqa: F401 (solos: a fixture)
    assert_clean_failure, files_under, partials, popen_cli, run_cli, run_cli_many, solos, tones, train_args,
)


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("song")
    sf.write(d / "song.wav", tones(2.0, 11025), 11025)
    return d / "song.wav"


def model_copy(src: Path, dest: Path, **changes) -> Path:
    """A copy of the tiny tone model with config.json keys changed (``classes``, ``name``, ``model``...)."""
    dest.mkdir(parents=True)
    shutil.copy(src / "model.safetensors", dest / "model.safetensors")
    cfg = json.loads((src / "config.json").read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    (dest / "config.json").write_text(json.dumps(cfg))
    return dest


def everything_inside(root: Path, allowed: Path) -> list[Path]:
    """Files under ``root`` that are not under ``allowed``."""
    return [p for p in files_under(root) if not p.resolve().is_relative_to(allowed.resolve())]


# --- 1. no write outside --out ----------------------------------------------------------------------------


def test_names_from_models_and_inputs_cannot_leave_the_output_folder(tone_model_dir, song, tmp_path):
    """A model named '../../x' or '/abs', classes named '../../x', an input named '...wav': every stem stays
    inside --out, under a sanitised name."""
    work = tmp_path / "work"
    work.mkdir()
    escapes = {
        "dotdot-name": model_copy(tone_model_dir, tmp_path / "m1", name="../../escaped-model"),
        "abs-name": model_copy(tone_model_dir, tmp_path / "m2", name=str(tmp_path / "abs-escape")),
        "dotdot-class": model_copy(tone_model_dir, tmp_path / "m3", classes=["../../esc", "high", "hiss"]),
    }
    dots = work / "inputs" / "...wav"
    dots.parent.mkdir()
    shutil.copy(song, dots)
    cases = [
        ["separate", song, "-s", "low", "-m", escapes["dotdot-name"], "-o", work / "o1"],
        ["separate", song, "-s", "low", "-m", escapes["abs-name"], "-o", work / "o2"],
        ["separate", song, "-s", "../../esc", "-m", escapes["dotdot-class"], "-o", work / "o3" / "a" / "b"],
        ["separate", dots, "-s", "low", "-m", tone_model_dir, "-o", work / "o4" / "x", "--name", "{track}/{source}.{ext}"],
    ]
    runs = run_cli_many(cases, tmp_path)
    for r, out in zip(runs, ["o1", "o2", "o3/a/b", "o4/x"]):
        assert r.returncode == 0, r.stderr
        written = files_under(work / out)
        assert len(written) == 1 and written[0].suffix == ".wav", (out, written)
        assert ".." not in written[0].relative_to(work / out).parts
    # Nothing anywhere but in the output folders (and the inputs, and the logs of the runs).
    stray = [p for p in files_under(tmp_path) if not any(
        p.resolve().is_relative_to((tmp_path / d).resolve()) for d in ("work", "m1", "m2", "m3", "cli-logs"))]
    assert stray == [], stray
    assert not (tmp_path / "abs-escape").exists()


def test_a_name_template_that_leaves_the_output_folder_is_refused(tone_model_dir, song, tmp_path):
    cases = [
        (["--name", "../{source}.{ext}"], ["--name", "outside", "--out"]),
        (["--name", str(tmp_path / "abs" / "{source}.{ext}")], ["--name", "outside", "--out"]),
        (["--name", ""], ["--name", "file name"]),
        (["--name", "{model}/"], ["--name", "file name"]),
    ]
    runs = run_cli_many(
        [["separate", song, "-s", "low", "-m", tone_model_dir, "-o", tmp_path / "out", *a] for a, _ in cases], tmp_path
    )
    for (args, phrases), r in zip(cases, runs):
        assert_clean_failure(r, 2, *phrases)
    assert not (tmp_path / "out").exists() and not (tmp_path / "abs").exists()
    assert not [p for p in files_under(tmp_path) if p.suffix == ".wav" and p != song]


def test_an_output_name_too_long_or_a_link_out_of_the_folder_is_an_output_error(tone_model_dir, song, tmp_path):
    long_input = tmp_path / ("a" * 240 + ".wav")
    shutil.copy(song, long_input)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "linked" / "out").mkdir(parents=True)
    (tmp_path / "linked" / "out" / "tone-tiny").symlink_to(elsewhere)
    runs = run_cli_many([
        ["separate", long_input, "-s", "low", "-m", tone_model_dir, "-o", tmp_path / "o1", "--name", "{track}_{source}.{ext}"],
        ["separate", song, "-s", "low", "-m", tone_model_dir, "-o", tmp_path / "linked" / "out"],
    ], tmp_path)
    assert_clean_failure(runs[0], 4, "longer than the file system allows", "Shorten")
    assert_clean_failure(runs[1], 4, "outside --out", "symbolic link")
    assert not (tmp_path / "o1").exists() and files_under(elsewhere) == []


# --- 3. nothing left after any signal ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_song(tmp_path_factory) -> Path:
    """3 minutes: with --chunk-seconds 0.5 a run takes seconds, long enough to be caught writing."""
    d = tmp_path_factory.mktemp("long")
    sf.write(d / "long.wav", np.tile(tones(10.0, 11025, 5), 18), 11025, subtype="PCM_16")
    return d / "long.wav"


def wait_for(condition, what: str, timeout: float = 120.0):
    """Poll ``condition`` until it returns something true (that value is returned), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def start_separating(model: Path, src: Path, out: Path) -> subprocess.Popen:
    """A `separate` run, returned once it is writing (its temporary stems exist)."""
    p = popen_cli("separate", src, "-s", "low,high,hiss", "--residual", "-m", model, "-o", out, "--chunk-seconds", "0.5")
    wait_for(lambda: p.poll() is not None or partials(out), "temporary stems")
    assert p.poll() is None, f"finished before it could be stopped: {p.communicate()[1]}"
    return p


def finish(p: subprocess.Popen) -> str:
    try:
        return p.communicate(timeout=120)[1]
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()


def test_a_sigkilled_run_leaves_a_lock_and_partials_that_the_next_run_takes_over_and_removes(tone_model_dir, long_song, tmp_path):
    """SIGKILL runs no cleanup. The next run into the same folder takes the dead run's lock over and removes
    its temporary files, and only those: a live process's, another machine's, one without a process id
    (older versions) and the user's own stay."""
    from sgnsep.core.atomic_write import HOST_TAG
    from sgnsep.core.folder_lock import LOCK_NAME

    out = tmp_path / "out"
    p = start_separating(tone_model_dir, long_song, out)
    p.kill()
    finish(p)
    killed = partials(out)
    assert killed and all(f".{p.pid}-{HOST_TAG}-" in f.name for f in killed), killed
    assert (out / LOCK_NAME).is_file()  # left by the killed run
    folder = killed[0].parent
    others = [
        folder / f".low.wav.{os.getpid()}-{HOST_TAG}-0000beef.partial",  # a live process (this test)
        folder / f".low.wav.{p.pid}-{'ffff' if HOST_TAG != 'ffff' else 'eeee'}-0000beef.partial",  # another machine
        folder / ".low.wav.0123456789abcdef.partial",  # no process id: nothing says it is stale
        folder / ".notes.partial",  # the user's
    ]
    for f in others:
        f.write_bytes(b"keep")
    r = run_cli("separate", long_song, "-s", "low,high,hiss", "--residual", "-m", tone_model_dir, "-o", out)
    assert r.returncode == 0, r.stderr
    assert not any(f.exists() for f in killed)
    assert all(f.read_bytes() == b"keep" for f in others)
    assert sorted(f.name for f in files_under(out) if f not in others) == ["high.wav", "hiss.wav", "low.wav", "residual.wav"]


def test_sighup_removes_partial_outputs_and_exits_129_with_a_message(tone_model_dir, long_song, tmp_path):
    out = tmp_path / "out"
    p = start_separating(tone_model_dir, long_song, out)
    p.send_signal(signal.SIGHUP)
    stderr = finish(p)
    assert p.returncode == 129, stderr
    assert f"hung up (SIGHUP) while processing {long_song}; its partial outputs were removed." in stderr.replace("\n", " ")
    assert "Traceback" not in stderr
    assert files_under(out) == [] and not out.exists()


@pytest.mark.parametrize("pattern", ["two-sigterms-20ms-apart", "a-burst-of-all-three"])
def test_repeated_signals_run_one_cleanup_to_its_end(tone_model_dir, long_song, tmp_path, pattern):
    """The first signal starts the cleanup; later ones (some land in it) change nothing: one message, its
    signal's exit code, and no temporary file left."""
    out = tmp_path / "out"
    p = start_separating(tone_model_dir, long_song, out)
    p.send_signal(signal.SIGTERM)
    sent = 1
    if pattern == "two-sigterms-20ms-apart":
        time.sleep(0.02)
        p.send_signal(signal.SIGTERM)
        sent += 1
    else:  # every 2 ms until the process is gone: into the cleanup, the message and the interpreter's exit
        burst = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP]
        deadline = time.monotonic() + 60
        while p.poll() is None and time.monotonic() < deadline:
            p.send_signal(burst[sent % 3])
            sent += 1
            time.sleep(0.002)
    stderr = finish(p).replace("\n", " ")
    assert sent >= 2
    # Signals that arrive together (while the process is inside one C call) reach Python at once, lowest number
    # first: which one stops the run is not ours to choose; that exactly one does, with its own code, is.
    said = {word: stderr.count(f"{word} while processing {long_song}; its partial outputs were removed.")
            for word in ("terminated", "interrupted", "hung up (SIGHUP)")}
    assert sum(said.values()) == 1, stderr
    assert p.returncode == {"terminated": 130, "interrupted": 130, "hung up (SIGHUP)": 129}[max(said, key=said.get)]
    if pattern == "two-sigterms-20ms-apart":
        assert said["terminated"] == 1 and p.returncode == 130, stderr
    assert "Traceback" not in stderr and "error" not in stderr.lower(), stderr
    assert files_under(out) == [] and not out.exists()


def logged(run: Path) -> int:
    """Steps in log.csv so far (0 while it is missing or being written)."""
    try:
        return max(0, len((run / "log.csv").read_text().splitlines()) - 1)
    except OSError:
        return 0


def log_steps(run: Path) -> list[int]:
    lines = (run / "log.csv").read_text().splitlines()
    assert lines and lines[0].startswith("step,epoch,lr,loss") and not any(ln.startswith("step,") for ln in lines[1:])
    return [int(ln.split(",")[0]) for ln in lines[1:]]


def start_training(solos: Path, run: Path) -> subprocess.Popen:
    """A `train` run (no checkpoint for 500 steps), returned once it has logged two steps."""
    p = popen_cli(*train_args(solos, run, "steps_per_epoch=500", "checkpoint_every=500"))
    wait_for(lambda: p.poll() is not None or logged(run) >= 2, "logged steps")
    assert p.poll() is None, f"the run ended before it was stopped: {p.communicate()[1]}"
    return p


def test_a_training_stopped_before_its_first_checkpoint_starts_again_cleanly(solos, tmp_path):
    """Killed before its first checkpoint: --resume used to refuse, and a new run appended its log to the
    stopped one's. Now --resume starts it again from step 0 with its saved settings, and a new run replaces
    its log; each logs every step once."""
    run = tmp_path / "run"
    p = start_training(solos, run)
    p.kill()
    finish(p)
    assert not (run / "state.safetensors").exists() and log_steps(run)
    shutil.copytree(run, tmp_path / "copy")
    resumed = run_cli(*train_args(solos, run), "--resume", "--max-steps", "3")  # with the saved settings
    assert resumed.returncode == 0, resumed.stderr
    assert "no checkpoint yet" in resumed.stderr and "starting it again from step 0" in resumed.stderr
    assert log_steps(run) == [1, 2, 3] and json.loads((run / "state.json").read_text())["step"] == 3
    fresh = run_cli(*train_args(solos, tmp_path / "copy"), "--max-steps", "2", "--set", "checkpoint_every=2")
    assert fresh.returncode == 0, fresh.stderr
    assert "stopped before its first checkpoint" in fresh.stderr and "Traceback" not in fresh.stderr
    assert log_steps(tmp_path / "copy") == [1, 2]


# --- 4. one process per folder ----------------------------------------------------------------------------
# The first run is frozen with SIGSTOP while the second tries (it keeps its lock): no race with it finishing.


def stop_frozen(p: subprocess.Popen) -> None:
    """SIGTERM a SIGSTOPped run and let it go on to handle it."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        p.send_signal(signal.SIGCONT)
    finish(p)


def test_a_second_separate_into_a_folder_in_use_is_refused_naming_the_holder(tone_model_dir, long_song, song, tmp_path):
    """Two runs whose outputs collide used to both exit 0, one replacing the other's stems."""
    out = tmp_path / "out"
    first = start_separating(tone_model_dir, long_song, out)
    first.send_signal(signal.SIGSTOP)  # holds the folder, frozen mid-write, for as long as the test needs
    try:
        writing = partials(out)
        second = run_cli("separate", long_song, "-s", "low", "-m", tone_model_dir, "-o", out, "--overwrite")
        assert_clean_failure(second, 4, f"output folder {out} is in use by process {first.pid}", "sgnsep separate",
                             "Wait for it to finish, or choose another --out")
        assert all(f.exists() for f in writing)  # the first run's files untouched
        assert first.poll() is None
    finally:
        stop_frozen(first)
    assert first.returncode == 130
    again = run_cli("separate", song, "-s", "low", "-m", tone_model_dir, "-o", out)  # free again
    assert again.returncode == 0, again.stderr
    assert [f.name for f in files_under(out)] == ["low.wav"]


def test_a_second_train_into_a_run_folder_in_use_is_refused_naming_the_holder(solos, tmp_path):
    """Two runs into one folder used to both train, interleaving log.csv."""
    run = tmp_path / "run"
    first = start_training(solos, run)
    first.send_signal(signal.SIGSTOP)
    try:
        second = run_cli(*train_args(solos, run), "--max-steps", "1")
        assert_clean_failure(second, 4, f"run folder {run} is in use by process {first.pid}", "sgnsep train",
                             "choose another --out")
        assert first.poll() is None
    finally:
        stop_frozen(first)
    steps = log_steps(run)
    assert steps == list(range(1, len(steps) + 1))  # one run's rows only


def test_a_second_render_into_a_corpus_folder_in_use_is_refused_naming_the_holder(timgm, tmp_path):
    out = tmp_path / "corpus"
    first = popen_cli("data", "synth", "--out", out, "--classes", "flute,tuba", "--soundfonts", timgm,
                      "--clips-per-class", "3000", "--clip-seconds", "2")
    try:
        wait_for(lambda: first.poll() is not None or list(out.rglob("*.wav")), "the first clips")
        assert first.poll() is None, first.communicate()[1]
        first.send_signal(signal.SIGSTOP)
        runs = run_cli_many([
            ["data", "synth", "--out", out, "--classes", "flute", "--soundfonts", timgm, "--overwrite"],
            ["data", "chorales", "--out", out, "--tracks", "1", "--soundfonts", timgm, "--overwrite"],
            ["data", "music", "--out", out, "--hours", "0.001", "--soundfonts", timgm, "--overwrite"],
        ], tmp_path)
        for r in runs:
            assert_clean_failure(r, 4, f"corpus folder {out} is in use by process {first.pid}", "sgnsep data synth")
        assert first.poll() is None
    finally:
        stop_frozen(first)
    assert first.returncode == 130 and not out.exists()


# --- 5. nothing of the user's replaced without asking -----------------------------------------------------


def test_train_into_a_folder_with_a_model_a_log_or_other_files_is_refused_unless_overwrite(tone_model_dir, solos, tmp_path):
    cases = {}
    for case in ("model", "log", "other", "both"):
        run = tmp_path / case
        run.mkdir()
        if case in ("model", "both"):
            shutil.copytree(tone_model_dir, run / "best")
        if case in ("log", "both"):
            (run / "log.csv").write_text("date,notes\n2024-01-01,my own log\n")
        if case in ("other", "both"):
            (run / "notes.txt").write_text("mine")
        cases[case] = run
    before = {p: p.read_bytes() for p in files_under(tmp_path)}
    runs = run_cli_many([train_args(solos, run) for run in cases.values()]
                        + [train_args(solos, cases["model"]) + ["--resume", "--overwrite"]], tmp_path)
    assert_clean_failure(runs[0], 4, f"{cases['model']} already holds a model ({cases['model'] / 'best'})", "--overwrite")
    assert_clean_failure(runs[1], 4, f"{cases['log'] / 'log.csv'} exists and is not a log", "--overwrite")
    assert_clean_failure(runs[2], 4, "holds files that `sgnsep train` does not write", "notes.txt", "--overwrite")
    assert_clean_failure(runs[3], 4, "already holds a model", "--overwrite")
    assert_clean_failure(runs[4], 2, "--resume", "--overwrite", "pass one of them")
    assert {p: p.read_bytes() for p in files_under(tmp_path) if "cli-logs" not in p.parts} == before

    run = cases["both"]
    r = run_cli(*train_args(solos, run), "--overwrite", "--max-steps", "2", "--set", "checkpoint_every=2")
    assert r.returncode == 0, r.stderr
    assert (run / "notes.txt").read_text() == "mine"  # not something train writes: kept
    assert log_steps(run) == [1, 2]  # its own log in place of the foreign one, not appended to it
    assert json.loads((run / "best" / "config.json").read_text())["training"]["steps"] == 2  # the new model


def test_data_synth_into_a_folder_of_user_files_is_refused_unless_overwrite(timgm, tmp_path):
    plain, foreign = tmp_path / "plain", tmp_path / "foreign"
    (plain / "mine").mkdir(parents=True)
    (plain / "mine" / "take1.wav").write_bytes(b"my recording")
    (foreign / "mine").mkdir(parents=True)
    (foreign / "mine" / "take1.wav").write_bytes(b"my recording")
    (foreign / "metadata.json").write_text(json.dumps({"clips": [{"path": "mine/take1.wav", "split": "train"}]}))
    before = {p: p.read_bytes() for p in files_under(tmp_path)}
    args = ["--classes", "flute", "--soundfonts", timgm, "--clips-per-class", "2", "--clip-seconds", "1"]
    runs = run_cli_many([["data", "synth", "--out", plain, *args], ["data", "synth", "--out", foreign, *args]], tmp_path)
    assert_clean_failure(runs[0], 4, f"{plain} holds files but no metadata.json", "take1.wav", "--overwrite")
    assert_clean_failure(runs[1], 4, "metadata.json exists and is not the metadata of a corpus", "--overwrite")
    assert {p: p.read_bytes() for p in files_under(tmp_path) if "cli-logs" not in p.parts} == before

    runs = run_cli_many([["data", "synth", "--out", d, *args, "--overwrite"] for d in (plain, foreign)], tmp_path)
    for d, r in zip((plain, foreign), runs):
        assert r.returncode == 0, r.stderr
        assert (d / "mine" / "take1.wav").read_bytes() == b"my recording"  # not a name the corpus writes: kept
        assert len(list((d / "flute").glob("*.wav"))) == 2 and json.loads((d / "metadata.json").read_text())["clips"]


def test_data_chorales_overwrite_replaces_its_own_set_and_never_the_users_files(timgm, tmp_path):
    out = tmp_path / "set"
    args = ["--out", out, "--tracks", "1", "--voices", "2", "--seconds", "1", "--soundfonts", timgm]
    first = run_cli("data", "chorales", *args)
    assert first.returncode == 0, first.stderr
    old = sorted(p.relative_to(out) for p in files_under(out))
    runs = run_cli_many([["data", "chorales", *args], ["data", "chorales", *args, "--tracks", "2", "--overwrite"]],
                        tmp_path)
    assert_clean_failure(runs[0], 4, "not an empty directory", "chorale set", "--overwrite")
    assert runs[1].returncode == 0, runs[1].stderr
    assert len(json.loads((out / "metadata.json").read_text())["tracks"]) == 2
    assert set(old) <= {p.relative_to(out) for p in files_under(out)}  # same names, rendered again

    (out / "extra").mkdir()
    (out / "extra" / "mine.flac").write_bytes(b"mine")
    before = {p: p.read_bytes() for p in files_under(out)}
    r = run_cli("data", "chorales", *args, "--overwrite")
    assert_clean_failure(r, 4, "not part of its chorale set", "mine.flac")
    assert {p: p.read_bytes() for p in files_under(out)} == before


# --- 6. settings checked first ----------------------------------------------------------------------------


def test_absurd_model_configs_are_exit_5_naming_the_setting(tone_model_dir, song, tmp_path):
    """Zero, negative, NaN and absurd sizes in a model's config.json, hostile JSON and NaN weights: one line
    naming the file and the setting, exit 5, before any network is built (no MemoryError, no C++ frames)."""
    import torch
    from safetensors.torch import load_file, save_file

    src = Path(tone_model_dir)
    cases = {  # name: (config changes, phrases)
        "heads0": ({"model": {"num_heads": 0}}, ["num_heads must be an integer between 1 and 4096, got 0"]),
        "hop0": ({"audio": {"hop_length": 0}}, ["hop_length must be an integer between 1 and", "got 0"]),
        "ngf1e9": ({"model": {"unet_ngf": 10**9}}, ["unet_ngf must be an integer between 1 and 65536, got 1000000000"]),
        "depth1e6": ({"model": {"depth": 10**6}}, ["depth must be an integer between 0 and 1024, got 1000000"]),
        "mlp1e300": ({"model": {"mlp_ratio": 1e300}}, ["mlp_ratio must be a number above 0 and at most 1024, got 1e+300"]),
        "nan-dropout": ({"model": {"dropout": float("nan")}}, ["dropout must be a number at least 0 and below 1, got nan"]),
        "unet-too-deep": ({"model": {"unet_depth": 9}}, ["do not fit together", "unet_depth"]),
        "huge": ({"model": {"unet_ngf": 4096, "embed_dim": 4096}}, ["weights (at most 1,000,000,000)"]),
        "name-type": ({"name": {"a": 1}}, ['"name" must be a string']),
    }
    models = {k: model_copy(src, tmp_path / k, **changes) for k, (changes, _) in cases.items()}
    nested = model_copy(src, tmp_path / "nested")
    (nested / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    nan = model_copy(src, tmp_path / "nan-weights")
    state = load_file(str(src / "model.safetensors"))
    first = sorted(k for k, v in state.items() if v.is_floating_point())[0]
    state[first] = torch.full_like(state[first], float("nan"))
    save_file(state, str(nan / "model.safetensors"))
    extra = {"nested": (nested, ["nested too deeply"]), "nan-weights": (nan, ["NaN or infinite values", first])}
    all_cases = {k: (models[k], p) for k, (_, p) in cases.items()} | extra
    out = tmp_path / "out"
    runs = run_cli_many([["separate", song, "-s", "low", "-m", m, "-o", out] for m, _ in all_cases.values()], tmp_path)
    for (name, (model, phrases)), r in zip(all_cases.items(), runs):
        assert_clean_failure(r, 5, str(model), *phrases)
        assert "MemoryError" not in r.stderr and song.name not in r.stderr.split("error:")[-1], name
    assert not out.exists()


def test_absurd_training_settings_are_usage_errors_before_any_work(tmp_path):
    cases = [
        ("checkpoint_every=0", "checkpoint_every must be an integer between 1 and 1000000000, got 0"),
        ("lr=-1", "lr must be a number above 0, got -1"),
        ("lr=NaN", "lr must be a number above 0, got nan"),
        ("batch_size=1e9", "batch_size must be an integer between 1 and 65536, got 1000000000.0"),
        ("audio.n_fft=0", "audio.n_fft must be an integer between 4 and"),
        ("steps_per_epoch=-3", "steps_per_epoch must be an integer between 0 and 1000000000, got -3"),
        ("model.num_heads=3", "not divisible by num_heads"),
        ("model.unet_depth=12", "do not fit together"),
        ('classes="low"', "classes must be a list of strings, got 'low'"),
    ]
    data = tmp_path / "data"
    (data / "low").mkdir(parents=True)
    (tmp_path / "nested.json").write_text("{\"a\":" * 50_000 + "1" + "}" * 50_000)
    runs = run_cli_many(
        [["train", "--data-dir", data, "--out", tmp_path / f"run{i}", "--device", "cpu", "--set", s]
         for i, (s, _) in enumerate(cases)]
        + [["train", "--data-dir", data, "--out", tmp_path / "runc", "--config", tmp_path / "nested.json"],
           ["train", "--data-dir", data, "--out", tmp_path / "runm", "--max-steps", "0"]],
        tmp_path,
    )
    for (setting, phrase), r in zip(cases, runs):
        assert_clean_failure(r, 2, "--set", phrase)
    assert_clean_failure(runs[-2], 2, "nested.json", "nested too deeply")
    assert_clean_failure(runs[-1], 2, "--max-steps must be at least 1")
    assert not any(p.name.startswith("run") for p in tmp_path.iterdir())

