"""The General MIDI solo corpus (sgnsep.synth), rendered from pretty_midi's bundled TimGM6mb.sf2 only."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tinysoundfont")
pytest.importorskip("music21")
pretty_midi = pytest.importorskip("pretty_midi")
sf = pytest.importorskip("soundfile")

from sgnsep.datasets import splits  # noqa: E402
from sgnsep.synth import (  # noqa: E402
    chorale_stems, corpus_files, instruments, loudness, render, scores, solos, soundfonts,
)
from sgnsep.core.errors import OutputError, UsageError  # noqa: E402

SR = 11025
CLASSES = ["flute", "tuba", "xylophone"]
CLIP_SECONDS = 2.0
SPLITS = {"train": 1 / 3, "val": 1 / 3, "test": 1 / 3}


def _make(out: Path, timgm: Path, **kw):
    args = dict(
        classes=CLASSES,
        soundfonts=[timgm],
        clips_per_class=3,
        clip_seconds=CLIP_SECONDS,
        sample_rate=SR,
        seed=7,
        score_source="mixed",
        splits=SPLITS,
    )
    args.update(kw)
    return solos.synthesize_corpus(out, **args)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, timgm):
    out = tmp_path_factory.mktemp("corpus_a")
    calls = []
    manifest = _make(out, timgm, progress=lambda done, total: calls.append((done, total)))
    return out, manifest, calls


@pytest.fixture(scope="module")
def corpus_again(tmp_path_factory, timgm):
    out = tmp_path_factory.mktemp("corpus_b")
    return out, _make(out, timgm)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "chorale_notes.json"
    }


# --- layout and metadata -------------------------------------------------------------------------------


def test_layout_is_solos(corpus):
    out, manifest, _ = corpus
    assert (out / "metadata.json").is_file()
    assert json.loads((out / "metadata.json").read_text()) == {k: v for k, v in manifest.items() if k != "timing"}
    wavs = sorted(str(p.relative_to(out)) for p in out.rglob("*.wav"))
    assert wavs == sorted(r["path"] for r in manifest["clips"])
    assert len(manifest["clips"]) == len(CLASSES) * 3
    for rec in manifest["clips"]:
        assert rec["path"] == f"{rec['class']}/{rec['clip_id']}.wav"
        info = sf.info(str(out / rec["path"]))
        assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
        assert info.frames == round(CLIP_SECONDS * SR)
    assert manifest["skipped"]["n_clips"] == 0
    assert manifest["skipped"]["presets"] == []


def test_metadata_records_how_each_clip_was_made(corpus, timgm):
    _, manifest, _ = corpus
    assert manifest["sample_rate"] == SR and manifest["seed"] == 7
    assert manifest["soundfonts"]["timgm6mb"]["path"] == str(timgm)
    assert manifest["soundfonts"]["timgm6mb"]["family"] == "timgm6mb"
    sources = set()
    for rec in manifest["clips"]:
        inst = instruments.INSTRUMENTS[rec["class"]]
        assert rec["program"] == inst.program
        assert rec["soundfont"] == "timgm6mb" and rec["soundfont_file"] == "TimGM6mb.sf2"
        assert rec["split"] in ("train", "val", "test")
        assert rec["seconds"] == pytest.approx(CLIP_SECONDS)
        assert isinstance(rec["transposition"], int)
        assert 56 <= rec["tempo_bpm"] <= 144
        score = rec["score"]
        sources.add(score["source"])
        if score["source"] == "chorale":
            assert score["chorale"].startswith("bach/bwv")
            assert score["voice"] in scores.VOICES
            assert score["id"] == "chorale:" + score["chorale"]
        else:
            assert score["id"] == f"random:{score['seed']}"
        for key in ("loudness_before_db", "loudness_after_db", "gain_db", "peak", "peak_limited"):
            assert key in rec
    assert sources == {"chorale", "random"}  # "mixed" alternates


def test_progress_callback(corpus):
    _, _, calls = corpus
    total = len(CLASSES) * 3
    assert calls == [(i, total) for i in range(1, total + 1)]


# --- audio ----------------------------------------------------------------------------------------------


def test_audio_non_silent_and_loudness_normalised(corpus):
    out, manifest, _ = corpus
    target = manifest["loudness"]["target_db"]
    befores = []
    for rec in manifest["clips"]:
        audio, _ = sf.read(str(out / rec["path"]), dtype="float32")
        assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 1e-3
        measured = loudness.active_loudness_db(audio, SR)
        assert measured == pytest.approx(rec["loudness_after_db"], abs=0.1)
        assert np.max(np.abs(audio)) <= 0.995
        if rec["peak_limited"]:
            assert measured < target
        else:
            assert measured == pytest.approx(target, abs=0.5)
        befores.append(rec["loudness_before_db"])
    assert max(befores) - min(befores) > 3  # the presets really differed before normalisation


def test_notes_within_instrument_range(corpus):
    _, manifest, _ = corpus
    for rec in manifest["clips"]:
        inst = instruments.INSTRUMENTS[rec["class"]]
        pitches = [n[0] for n in rec["notes"]]
        assert pitches and all(inst.low <= p <= inst.high for p in pitches)
        assert rec["pitch_range"] == [min(pitches), max(pitches)]
        assert all(0 <= n[1] < CLIP_SECONDS and n[2] > 0 and 1 <= n[3] <= 127 for n in rec["notes"])


@pytest.mark.parametrize("name", sorted(instruments.INSTRUMENTS))
def test_random_melody_in_range_and_deterministic(name):
    inst = instruments.INSTRUMENTS[name]
    notes, _ = scores.random_melody(inst, 123, 8.0)
    again, _ = scores.random_melody(inst, 123, 8.0)
    assert notes == again
    assert len(notes) >= 4
    assert all(inst.low <= n.pitch <= inst.high for n in notes)
    assert len({n.velocity for n in notes}) > 1  # dynamics vary
    assert len({round(n.duration, 3) for n in notes}) > 1  # rhythms vary
    starts = [n.start for n in notes]
    assert starts == sorted(starts) and starts[-1] < 8.0


def test_chorale_voices_fit_every_range():
    cid = scores.chorale_ids()[0]
    voices = scores.load_chorales([cid])[cid]
    assert set(voices) == set(scores.VOICES)
    for voice in scores.VOICES:
        quarters = [e[2] for e in voices[voice]]
        assert all(q > 0 for q in quarters) and 1.0 in quarters  # durations from the score
    for name in ("double_bass", "xylophone", "violin", "tuba"):
        inst = instruments.INSTRUMENTS[name]
        rng = np.random.default_rng(0)
        for voice in scores.VOICES:
            notes, info = scores.chorale_clip(voices, inst, rng, 6.0, voice=voice)
            assert all(inst.low <= n.pitch <= inst.high for n in notes)
            src = [e[0] for e in voices[voice]]
            assert min(src) + info["transposition"] >= inst.low - 12  # a real transposition, not clamping
            assert scores.CHORALE_TEMPO_BPM[0] <= info["tempo_bpm"] <= scores.CHORALE_TEMPO_BPM[1]


def test_render_notes_sample_exact_and_dry(timgm):
    onset = 0.25  # -> sample 2756
    notes = [scores.Note(72, onset, 0.5, 100)]
    audio = render.render_notes(timgm, 73, notes, SR, seconds=1.5)
    assert audio.dtype == np.float32 and audio.shape == (round(1.5 * SR),)
    first = int(np.argmax(np.abs(audio) > 1e-3))
    assert abs(first - round(onset * SR)) <= 48  # the decimation filter's half length, in output samples
    assert np.max(np.abs(audio[: round(onset * SR) - 64])) < 1e-6
    assert np.max(np.abs(audio)) > 0.01
    again = render.render_notes(timgm, 73, notes, SR, seconds=1.5)
    render.render_notes(timgm, 0, [scores.Note(40, 0.0, 1.0, 127)], SR)  # an unrelated render in between
    assert np.array_equal(audio, again)
    assert np.array_equal(audio, render.render_notes(timgm, 73, notes, SR, seconds=1.5))
    # Length without `seconds`: last note-off plus the tail.
    assert len(render.render_notes(timgm, 73, notes, SR, tail_seconds=0.5)) == round(1.25 * SR)


# --- determinism and splits -----------------------------------------------------------------------------


def test_same_arguments_give_byte_identical_files(corpus, corpus_again):
    a, b = _files(corpus[0]), _files(corpus_again[0])
    assert a.keys() == b.keys() and len(a) == len(CLASSES) * 3 + 1
    assert all(a[k] == b[k] for k in a)


def test_other_seed_gives_other_audio(corpus, tmp_path, timgm):
    manifest = _make(tmp_path / "c", timgm, seed=8, classes=["flute"], clips_per_class=1, splits=(1, 0, 0))
    rec = manifest["clips"][0]
    assert (tmp_path / "c" / rec["path"]).read_bytes() != (corpus[0] / rec["path"]).read_bytes()


def test_splits_disjoint_by_score(corpus, tmp_path, timgm):
    _, manifest, _ = corpus
    ids = manifest["splits"]
    assert sorted(i for v in ids.values() for i in v) == sorted(r["clip_id"] for r in manifest["clips"])
    for rec in manifest["clips"]:
        assert rec["clip_id"] in ids[rec["split"]]
    for c in CLASSES:  # 3 clips, a third each
        assert sorted(r["split"] for r in manifest["clips"] if r["class"] == c) == ["test", "train", "val"]
    scores = {s: set(v) for s, v in manifest["split_scores"].items()}
    assert not scores["train"] & scores["val"]
    assert not scores["train"] & scores["test"]
    assert not scores["val"] & scores["test"]
    # A chorale's split depends on the chorale only: a corpus made with another seed keeps it there.
    other = _make(tmp_path / "o", timgm, seed=99, classes=["tuba"], score_source="chorales", clip_seconds=1.0)
    for split, ids2 in other["split_scores"].items():
        for s2, ids1 in manifest["split_scores"].items():
            if s2 != split:
                assert not set(ids2) & set(ids1)
    for rec in other["clips"]:
        assert splits.chorale_split(rec["score"]["chorale"], other["split_fractions"]) == rec["split"]


def test_split_counts():
    fr = {"train": 0.8, "val": 0.1, "test": 0.1}
    assert splits.split_counts(10, fr) == {"train": 8, "val": 1, "test": 1}
    assert splits.split_counts(3, fr) == {"train": 1, "val": 1, "test": 1}
    assert splits.split_counts(2, fr) == {"train": 2, "val": 0, "test": 0}
    assert sum(splits.split_counts(101, fr).values()) == 101


# --- errors and refusals --------------------------------------------------------------------------------


def test_unknown_class_lists_known_ones(tmp_path, timgm):
    with pytest.raises(UsageError) as err:
        _make(tmp_path / "x", timgm, classes=["flute", "kazoo"])
    assert "kazoo" in str(err.value) and "double_bass" in str(err.value) and "violin" in str(err.value)
    with pytest.raises(UsageError, match="General MIDI has no erhu"):
        _make(tmp_path / "x", timgm, classes=["erhu"])
    assert not (tmp_path / "x" / "metadata.json").exists()


def test_classes_cover_music11_and_orchestra():
    assert set(instruments.MUSIC11_CLASSES) <= set(instruments.INSTRUMENTS)
    assert "erhu" not in instruments.INSTRUMENTS and "erhu" in instruments.UNRENDERABLE
    assert set(instruments.ORCHESTRAL_CLASSES) == set(instruments.INSTRUMENTS)
    for name, inst in instruments.INSTRUMENTS.items():
        assert name == inst.name and 0 <= inst.program <= 127 and 0 <= inst.low < inst.high <= 127


def test_sf_gmbank_is_refused(tmp_path, timgm):
    reserved = tmp_path / "sf_GMbank.sf2"
    reserved.write_bytes(timgm.read_bytes())
    disguised = tmp_path / "nice.sf2"
    os.symlink(reserved, disguised)
    for path in (reserved, disguised):
        with pytest.raises(UsageError, match="reserved for independent evaluation"):
            render.render_notes(path, 0, [scores.Note(60, 0.0, 0.2, 100)], SR)
        with pytest.raises(UsageError, match="reserved"):
            _make(tmp_path / "y", timgm, soundfonts=[path])
    assert all("sf_gmbank" not in str(p).lower() for p in soundfonts.find_soundfonts().values())


def test_find_soundfonts_includes_pretty_midi_copy(timgm):
    found = soundfonts.find_soundfonts()
    assert found.get("timgm6mb_pretty_midi") == timgm


def test_no_soundfont_found_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(soundfonts, "find_soundfonts", lambda: {})
    with pytest.raises(UsageError) as err:
        solos.synthesize_corpus(tmp_path / "z", classes=["flute"], clips_per_class=1)
    assert "fluid-soundfont-gm" in str(err.value) and "pretty_midi" in str(err.value)


def test_existing_corpus_is_not_overwritten(corpus, timgm):
    out = corpus[0]
    with pytest.raises(OutputError, match="overwrite"):
        _make(out, timgm)


def test_silent_renders_are_skipped_and_counted(tmp_path, timgm, monkeypatch):
    real = render.render_notes

    def fake(path, program, notes, sample_rate=SR, **kw):
        audio = real(path, program, notes, sample_rate, **kw)
        is_tuba_clip = program == instruments.INSTRUMENTS["tuba"].program and kw.get("seconds") == 1.0
        return audio * 0 if is_tuba_clip else audio

    monkeypatch.setattr(render, "render_notes", fake)
    monkeypatch.setattr(
        render, "probe_preset", lambda path, inst, sr=SR: "no preset" if inst.name == "xylophone" else None
    )
    manifest = _make(tmp_path / "s", timgm, clip_seconds=1.0, score_source="random")
    assert {r["class"] for r in manifest["clips"]} == {"flute"}
    assert manifest["skipped"]["n_clips"] == 6
    skipped_preset = {"class": "xylophone", "soundfont": "timgm6mb", "reason": "no preset"}
    assert manifest["skipped"]["presets"] == [skipped_preset]
    reasons = {s["reason"] for s in manifest["skipped"]["clips"]}
    assert reasons == {"silent render", "no soundfont renders this class"}


def test_float_wav_writer_is_deterministic(tmp_path):
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 1001).astype(np.float32)
    for name in ("a.wav", "b.wav"):
        corpus_files.write_wav(tmp_path / name, x, SR, "FLOAT")
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    y, rate = sf.read(str(tmp_path / "a.wav"), dtype="float32")
    assert rate == SR and np.array_equal(x, y)
    corpus_files.write_wav(tmp_path / "c.wav", x, SR, "PCM_16")
    z, _ = sf.read(str(tmp_path / "c.wav"), dtype="float32")
    assert np.max(np.abs(z - x)) <= 1 / 32768


def test_import_is_cheap():
    import subprocess
    import sys

    heavy = "('music21', 'tinysoundfont', 'torch', 'soundfile')"
    code = f"import sys, sgnsep.synth; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- chorale stems (evaluation sets of real four-part music) --------------------------------------------

STEM_CLASSES = ["flute", "violin", "cello", "tuba", "clarinet", "horn"]
STEM_SECONDS = 2.0


def _stems(out: Path, timgm: Path, **kw):
    args = dict(
        tracks=3,
        num_sources=3,
        seconds=STEM_SECONDS,
        sample_rate=SR,
        seed=3,
        classes=STEM_CLASSES,
        soundfonts=[timgm],
    )
    args.update(kw)
    return chorale_stems.render_chorale_stems(out, **args)


@pytest.fixture(scope="module")
def stems(tmp_path_factory, timgm):
    """A test-split set, recording every chorale the renderer parsed."""
    out = tmp_path_factory.mktemp("stems_a") / "set"
    loaded: list[str] = []
    real = scores.load_chorales

    def spy(ids, cache_path=None):
        ids = list(ids)
        loaded.extend(ids)
        return real(ids, cache_path)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scores, "load_chorales", spy)
        manifest = _stems(out, timgm)
    return out, manifest, loaded


def test_stems_layout(stems):
    out, manifest, _ = stems
    assert json.loads((out / "metadata.json").read_text()) == {k: v for k, v in manifest.items() if k != "timing"}
    assert manifest["format"] == "sgnsep-chorale-stems" and manifest["version"] == 1
    assert manifest["n_tracks"] == len(manifest["tracks"]) == 3
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [t["track_id"] for t in manifest["tracks"]] + ["metadata.json"]
    )
    for track in manifest["tracks"]:
        files = sorted(p.name for p in (out / track["track_id"]).iterdir())
        assert files == sorted(f"{c}.flac" for c in track["voices"].values())
        for c, stem in track["stems"].items():
            assert stem["path"] == f"{track['track_id']}/{c}.flac"
            info = sf.info(str(out / stem["path"]))
            assert (info.format, info.subtype, info.samplerate, info.channels) == ("FLAC", "PCM_16", SR, 1)
            assert info.frames == round(STEM_SECONDS * SR)  # every stem of a track has the same length


def test_stems_one_test_chorale_per_track_in_distinct_classes(stems):
    _, manifest, _ = stems
    fr = manifest["split_fractions"]
    assert fr == {"train": 0.8, "val": 0.1, "test": 0.1}
    assert len({t["chorale"] for t in manifest["tracks"]}) == 3  # no chorale twice while others remain
    for track in manifest["tracks"]:
        assert track["chorale"].startswith("bach/bwv") and track["split"] == "test"
        assert splits.chorale_split(track["chorale"], fr) == "test"
        classes = list(track["voices"].values())
        assert len(classes) == len(set(classes)) == 3 and set(classes) <= set(STEM_CLASSES)
        assert set(track["voices"]) <= set(scores.VOICES) and set(track["transpositions"]) == set(track["voices"])
        assert track["soundfont"] == "timgm6mb" and track["seconds"] == STEM_SECONDS
        assert scores.CHORALE_TEMPO_BPM[0] <= track["tempo_bpm"] <= scores.CHORALE_TEMPO_BPM[1]
        assert {s["voice"] for s in track["stems"].values()} == set(track["voices"])
        for voice, c in track["voices"].items():
            stem, inst = track["stems"][c], instruments.INSTRUMENTS[c]
            assert stem["voice"] == voice and stem["transposition"] == track["transpositions"][voice]
            assert stem["transposition"] % 12 == 0  # whole octaves: the harmony is kept
            assert all(inst.low <= n[0] <= inst.high for n in stem["notes"])
        # One tempo and one window: every voice starts on the same beat, after the same lead-in.
        firsts = {s["notes"][0][1] for s in track["stems"].values()}
        assert firsts == {track["lead_in_seconds"]}


def test_stems_non_silent_and_normalised(stems):
    out, manifest, _ = stems
    for track in manifest["tracks"]:
        for stem in track["stems"].values():
            audio, _ = sf.read(str(out / stem["path"]), dtype="float32")
            assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 1e-3
            assert loudness.active_loudness_db(audio, SR) == pytest.approx(stem["loudness_after_db"], abs=0.1)
            if not stem["peak_limited"]:
                assert stem["loudness_after_db"] == pytest.approx(manifest["loudness"]["target_db"], abs=0.5)
    assert manifest["skipped"]["n_silent"] == 0


def test_stems_byte_identical(stems, tmp_path, timgm):
    again = tmp_path / "set"
    _stems(again, timgm)
    a, b = _files(stems[0]), _files(again)
    assert a.keys() == b.keys() and len(a) == 3 * 3 + 1
    assert all(a[k] == b[k] for k in a)


def test_stems_use_no_chorale_outside_the_split(stems, tmp_path, timgm):
    _, manifest, loaded = stems
    fr = manifest["split_fractions"]
    assert loaded and {splits.chorale_split(c, fr) for c in loaded} == {"test"}
    assert manifest["chorales"] == sorted({c for c in loaded})
    val = _stems(tmp_path / "val", timgm, split="val", tracks=2, num_sources=2, seconds=1.0)
    assert val["n_tracks"] == 2 and {t["split"] for t in val["tracks"]} == {"val"}
    assert {splits.chorale_split(t["chorale"], fr) for t in val["tracks"]} == {"val"}
    assert not set(val["chorales"]) & set(manifest["chorales"])


def test_stems_silent_tracks_are_skipped_and_counted(tmp_path, timgm, monkeypatch):
    real = render.render_notes
    tuba = instruments.INSTRUMENTS["tuba"].program

    def fake(path, program, notes, sample_rate=SR, **kw):
        audio = real(path, program, notes, sample_rate, **kw)
        return audio * 0 if program == tuba and kw.get("seconds") == 1.0 else audio

    monkeypatch.setattr(render, "render_notes", fake)
    classes = ["tuba", "cello", "violin"]
    manifest = _stems(tmp_path / "s", timgm, classes=classes, num_sources=2, tracks=3, seconds=1.0)
    silent = [s for s in manifest["skipped"]["tracks"] if s["reason"] == "silent render"]
    assert manifest["skipped"]["n_silent"] == len(silent) >= 1
    assert manifest["n_tracks"] == 3  # the next chorales replaced the skipped ones
    assert all(s["class"] == "tuba" for s in silent)
    for track in manifest["tracks"]:  # what was written has no tuba
        assert "tuba" not in track["voices"].values()
        assert not (tmp_path / "s" / track["track_id"] / "tuba.flac").exists()


def test_stems_refuse_a_non_empty_folder_and_bad_arguments(stems, tmp_path, timgm):
    with pytest.raises(OutputError, match="not an empty directory"):
        _stems(stems[0], timgm)
    with pytest.raises(UsageError, match="split"):
        _stems(tmp_path / "x", timgm, split="dev")
    with pytest.raises(UsageError, match="num_sources"):
        _stems(tmp_path / "x", timgm, num_sources=5)
    with pytest.raises(UsageError, match="subtype"):
        _stems(tmp_path / "x", timgm, subtype="FLOAT")
    with pytest.raises(UsageError, match="reserved"):
        _stems(tmp_path / "x", timgm, soundfonts=[tmp_path / "sf_GMbank.sf2"])
    assert not (tmp_path / "x").exists()


def test_cli_data_synth(timgm, tmp_path):
    import os
    import subprocess
    import sys

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "sgnsep", "data", "synth", *map(str, args)],
                              capture_output=True, text=True, timeout=300, env=dict(os.environ))

    out = tmp_path / "corpus"
    r = cli("--out", out, "--classes", "flute,cello", "--soundfonts", timgm, "--clips-per-class", "3",
            "--clip-seconds", "1.5", "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["cello", "flute"]
    assert len(list((out / "flute").glob("*.wav"))) == 3 and (out / "metadata.json").is_file()
    again = cli("--out", out, "--classes", "flute", "--soundfonts", timgm)
    assert again.returncode != 0 and "Traceback" not in again.stderr and "overwrite" in again.stderr.lower()
    bad = cli("--out", tmp_path / "x", "--classes", "erhu", "--soundfonts", timgm)
    assert bad.returncode == 2 and "erhu" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_data_chorales_renders_training_stems_that_train_coherently(timgm, tmp_path):
    import os
    import subprocess
    import sys

    from sgnsep.datasets import load_dataset, sample_mixture

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "sgnsep", "data", "chorales", *map(str, args)],
                              capture_output=True, text=True, timeout=300, env=dict(os.environ))

    out = tmp_path / "chorales"
    r = cli("--out", out, "--split", "train", "--tracks", "3", "--voices", "3", "--seconds", "2", "--soundfonts", timgm)
    assert r.returncode == 0, r.stderr
    meta = json.loads((out / "metadata.json").read_text())
    assert len(meta["tracks"]) == 3 and all(len(t["stems"]) == 3 for t in meta["tracks"])
    assert all(splits.chorale_split(t["chorale"], splits.DEFAULT_SPLIT_FRACTIONS) == "train" for t in meta["tracks"])
    ds = load_dataset("stems", out, split="train", sample_rate=11025, min_samples=4096)
    if ds.tracks:  # 3 tracks: the stems loader's hash split may leave none in train
        sources, classes = sample_mixture(ds, 3, 4096, np.random.default_rng(0), coherent=1.0)
        assert len(set(classes.tolist())) == 3
    again = cli("--out", out, "--tracks", "1", "--soundfonts", timgm)
    assert again.returncode == 4 and "not an empty directory" in again.stderr and "Traceback" not in again.stderr
    bad = cli("--out", tmp_path / "x", "--voices", "5", "--soundfonts", timgm)
    assert bad.returncode == 2 and "--voices" in bad.stderr and "Traceback" not in bad.stderr


def _interrupt_before_the_nth_rename(monkeypatch, nth: int) -> None:
    """Ctrl-C as the nth finished file is about to be renamed into place (the rename never happens)."""
    real_replace = os.replace
    seen = {"n": 0}

    def replacing(src, dst, *args, **kwargs):
        seen["n"] += 1
        if seen["n"] == nth:
            raise KeyboardInterrupt
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replacing)


@pytest.mark.parametrize("render", ["clips", "flac-stems", "wav-stems"])
@pytest.mark.parametrize("folder", ["new", "existing"])
def test_an_interrupted_render_leaves_the_folder_as_it_was(timgm, tmp_path, monkeypatch, render, folder):
    """Stopped after some files were written: no temporary file, none of the new files, no new folder; what
    the user had in an existing folder stays."""
    out = tmp_path / "a" / "out"  # with a missing parent: both are taken away again
    if folder == "existing":
        out.mkdir(parents=True)
        if render == "clips":  # solos may go into a folder with other files (with overwrite); stems need an empty one
            (out / "notes.txt").write_text("mine")
    before = sorted(tmp_path.rglob("*"))
    _interrupt_before_the_nth_rename(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        if render == "clips":
            _make(out, timgm, clips_per_class=2, overwrite=folder == "existing")
        else:
            _stems(out, timgm, tracks=2, fmt=render.split("-")[0])
    assert sorted(tmp_path.rglob("*")) == before


def test_an_interrupted_overwrite_leaves_no_manifest_of_the_old_corpus(timgm, tmp_path, monkeypatch):
    """overwrite replaces clips under the same names: the old metadata.json must not outlive the old clips."""
    out = tmp_path / "c"
    _make(out, timgm, clips_per_class=1)
    _interrupt_before_the_nth_rename(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        _make(out, timgm, clips_per_class=2, seed=8, overwrite=True)
    assert not (out / "metadata.json").exists()
    assert not list(out.rglob("*.wav")) and not list(out.rglob("*.partial"))


def test_overwrite_removes_only_clips_inside_the_corpus(timgm, tmp_path):
    """The old manifest's clip paths are data: one that points outside the corpus is not deleted."""
    out = tmp_path / "c"
    _make(out, timgm, clips_per_class=1)
    victim = tmp_path / "victim.wav"
    victim.write_bytes(b"keep me")
    meta = json.loads((out / "metadata.json").read_text())
    meta["clips"] += [{"path": "../victim.wav"}, {"path": str(victim)}, {"path": 3}]
    (out / "metadata.json").write_text(json.dumps(meta))
    _make(out, timgm, clips_per_class=1, overwrite=True)
    assert victim.read_bytes() == b"keep me"
    assert len(json.loads((out / "metadata.json").read_text())["clips"]) == 3


def test_cli_data_synth_stopped_by_sigterm_exits_130_and_takes_its_files_away(timgm, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "corpus"
    p = subprocess.Popen(
        [sys.executable, "-m", "sgnsep", "data", "synth", "--out", str(out), "--classes", "flute,tuba",
         "--soundfonts", str(timgm), "--clips-per-class", "3000", "--clip-seconds", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while p.poll() is None and time.monotonic() < deadline and not list(out.rglob("*.wav")):
            time.sleep(0.02)
        assert p.poll() is None, f"finished before it could be stopped: {p.communicate()[1]}"
        p.send_signal(signal.SIGTERM)
        _, stderr = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, stderr
    assert f"terminated while processing {out}; its partial outputs were removed." in stderr.replace("\n", " ")
    assert "Traceback" not in stderr and not out.exists()


def test_the_offline_corpus_is_rendered_once(tmp_path, monkeypatch):
    rendered = []

    def fake(out_dir, **kw):
        rendered.append(kw)
        (out_dir / "metadata.json").write_text("{}")

    monkeypatch.setattr(solos, "synthesize_corpus", fake)
    said = []
    assert solos.ensure_offline_corpus(tmp_path / "synth", on_render=said.append) is True
    assert solos.ensure_offline_corpus(tmp_path / "synth", on_render=said.append) is False
    assert rendered == [solos.OFFLINE_CORPUS] and said == [tmp_path / "synth"]
