"""The music corpus (`sgnsep data music`): scores, performance, effects, manifest, splits, and the harder
training mixtures of sgnsep.datasets / sgnsep.datasets.mixture_draws. Rendered from pretty_midi's TimGM6mb.sf2 only,
a few seconds of audio per corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tinysoundfont")
pytest.importorskip("music21")
pretty_midi = pytest.importorskip("pretty_midi")
sf = pytest.importorskip("soundfile")

from sgnsep import datasets  # noqa: E402
from sgnsep.datasets import mixture_draws, splits  # noqa: E402
from sgnsep.synth import (  # noqa: E402
    instruments, loudness, music_corpus, performance, render, score_library, scores, stem_effects,
)
from sgnsep.datasets import load_dataset, sample_mixture  # noqa: E402
from sgnsep.core.errors import OutputError, UsageError  # noqa: E402

SR = 11025
TINY = dict(hours=12 / 3600, seed=3, track_seconds=(2.0, 3.0), max_sources=4, sample_rate=SR, mixtures=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, timgm):
    out = tmp_path_factory.mktemp("music_a") / "corpus"
    cache = tmp_path_factory.mktemp("scores_a")
    manifest = music_corpus.build_music_corpus(out, soundfonts=[str(timgm)], score_cache=cache, **TINY)
    return out, manifest, cache


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- determinism and the manifest ------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_corpus_from_a_warm_score_cache(corpus, tmp_path, timgm):
    out, manifest, cache = corpus
    assert len(list(cache.glob("*.json"))) >= 1  # the pieces used were cached as JSON
    score_library._MEMO.clear()  # this time the notes come from the JSON cache, not from music21
    again = music_corpus.build_music_corpus(tmp_path / "b", soundfonts=[str(timgm)], score_cache=cache, **TINY)
    assert _files(out) == _files(tmp_path / "b")
    assert again["totals"] == manifest["totals"]
    other = music_corpus.build_music_corpus(tmp_path / "c", soundfonts=[str(timgm)], score_cache=cache,
                                            **{**TINY, "seed": 4})
    assert _files(tmp_path / "c") != _files(out) and other["tracks"] != manifest["tracks"]


def test_manifest_matches_the_files(corpus):
    out, manifest, _ = corpus
    disk = json.loads((out / "metadata.json").read_text())
    assert disk["format"] == music_corpus.FORMAT == datasets.MUSIC_CORPUS_FORMAT and "timing" not in disk
    listed = {"metadata.json"}
    assert manifest["totals"]["stem_hours"] >= TINY["hours"] * 0.999
    for track in disk["tracks"]:
        assert track["split"] in ("train", "val", "test") and track["soundfont_family"] == "timgm6mb"
        listed.add(f"{track['track_id']}/mixture.wav")
        for cls, stem in track["stems"].items():
            listed.add(stem["path"])
            assert stem["path"] == f"{track['track_id']}/{cls}.wav" and stem["class"] == cls
            audio, rate = sf.read(out / stem["path"], dtype="float64")
            assert rate == SR and len(audio) == round(track["seconds"] * SR) == round(stem["seconds"] * SR)
            assert abs(loudness.active_loudness_db(audio, SR) - stem["loudness_after_db"]) < 0.05
            for key in ("preset", "transposition", "performance", "effects", "pitch_range", "register"):
                assert key in stem
            assert set(stem["effects"]) >= {"eq", "reverb", "noise", "gain_db"}
        assert {"tempo_bpm", "rubato", "fermata_factor"} <= set(track["timing"])
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert on_disk == listed


def test_a_mixture_is_the_sum_of_its_stems(corpus):
    out, manifest, _ = corpus
    multi = [t for t in manifest["tracks"] if len(t["stems"]) >= 2]
    assert multi, "the tiny corpus should hold a track of two stems or more"
    for track in multi:
        stems = [sf.read(out / s["path"], dtype="float64")[0] for s in track["stems"].values()]
        mixture, _ = sf.read(out / track["track_id"] / "mixture.wav", dtype="float64")
        assert np.array_equal(mixture, np.sum(stems, axis=0))


def test_parts_stay_inside_the_ranges_of_their_presets(corpus):
    _, manifest, _ = corpus
    presets = manifest["presets"]
    for track in manifest["tracks"]:
        for cls, stem in track["stems"].items():
            ranges = [p["range"] for p in presets[track["soundfont"]][cls]
                      if (p["bank"], p["program"]) == (stem["preset"]["bank"], stem["preset"]["program"])]
            lo, hi = ranges[0]
            assert lo <= stem["pitch_range"][0] <= stem["pitch_range"][1] <= hi
            assert instruments.INSTRUMENTS[cls].low <= stem["pitch_range"][0]
            assert stem["pitch_range"][1] <= instruments.INSTRUMENTS[cls].high


# --- scores and splits -----------------------------------------------------------------------------------


def test_string_quartets_are_refused_by_path(tmp_path, monkeypatch):
    for rel in ("haydn/opus74no1/movement1.mxl", "mozart/k458/movement1.mxl", "beethoven/opus18no1/movement1.mxl",
                "schumann_robert/opus41no1/movement1.mxl"):
        with pytest.raises(UsageError, match="reserved"):
            score_library.check_score_allowed(rel)
    link = tmp_path / "harmless.mxl"
    link.symlink_to(score_library.corpus_root() / "beethoven" / "opus74.mxl")
    with pytest.raises(UsageError):
        score_library.check_score_allowed(link)
    pieces = score_library.list_pieces()
    assert not [p for p in pieces if p.rel.startswith(score_library.RESERVED_PREFIXES)]
    assert {"palestrina", "monteverdi", "trecento", "josquin", "bach", "essenFolksong", "oneills1850",
            "ryansMammoth"} <= {p.collection for p in pieces}
    monkeypatch.setattr(score_library, "_parse", lambda piece: pytest.fail("a reserved score was parsed"))
    quartet = score_library.Piece("haydn/opus74no1/movement1.mxl", "haydn/opus74no1/movement1.mxl", None,
                                  "haydn", "other", "")
    with pytest.raises(UsageError):
        score_library.load_piece(quartet, tmp_path)


def test_splits_are_disjoint_by_work():
    pieces = score_library.list_pieces()
    chorales = frozenset(scores.chorale_ids())
    fractions = dict(splits.DEFAULT_SPLIT_FRACTIONS)
    keys = {p.id: score_library.work_key(p, chorales) for p in pieces}
    # Palestrina's movements go with their mass; a Bach chorale keeps the split of sgnsep.synth's corpora.
    masses = {}
    for p in pieces:
        if p.collection == "palestrina":
            masses.setdefault(keys[p.id], []).append(p.id)
    assert max(len(v) for v in masses.values()) >= 4
    bach = [p for p in pieces if p.rel.rsplit(".", 1)[0] in chorales]
    assert len(bach) > 300
    for p in bach[:50]:
        cid = p.rel.rsplit(".", 1)[0]
        assert splits.piece_split(keys[p.id], fractions) == splits.chorale_split(cid, fractions)
    assigned = [splits.piece_split(k, fractions) for k in set(keys.values())]
    share = {s: assigned.count(s) / len(assigned) for s in ("train", "val", "test")}
    assert 0.75 < share["train"] < 0.85 and 0.07 < share["test"] < 0.13


def test_the_stems_loader_takes_each_tracks_split_from_the_manifest(corpus, tmp_path):
    out, manifest, _ = corpus
    for track in manifest["tracks"]:
        assert track["split"] == splits.piece_split(track["work"], manifest["split_fractions"])
    # Six tracks whose manifest splits differ from what the track-name hash would give them.
    root = tmp_path / "stems"
    tone = 0.1 * np.sin(2 * np.pi * 220 * np.arange(SR) / SR)
    names = [f"{k:05d}-piece" for k in range(6)]
    hashed = datasets.rank_splits(names)
    wanted = {n: {"train": "test", "val": "train", "test": "val"}[hashed[n]] for n in names}
    tracks = []
    for n in names:
        (root / n).mkdir(parents=True)
        stems = {}
        for c, reg in (("violin", 76.0), ("viola", 72.0)):
            sf.write(root / n / f"{c}.wav", tone, SR, subtype="FLOAT")
            stems[c] = {"path": f"{n}/{c}.wav", "register": reg}
        tracks.append({"track_id": n, "split": wanted[n], "stems": stems})
    (root / "metadata.json").write_text(json.dumps({"format": music_corpus.FORMAT, "tracks": tracks}))
    for split in ("train", "val", "test"):
        ds = load_dataset("stems", root, split=split, sample_rate=SR, min_samples=1024)
        assert {c.path.parent.name for c in ds.clips} == {n for n in names if wanted[n] == split}
        assert {ds.registers[(c.path.parent.name, ds.classes[c.cls])] for c in ds.clips} == {76.0, 72.0}


def test_only_splits_renders_held_out_pieces_that_keep_their_split(corpus, tmp_path, timgm):
    _, _, cache = corpus
    held = music_corpus.build_music_corpus(tmp_path / "held", soundfonts=[str(timgm)], score_cache=cache,
                                           only_splits=["test", "val"], **TINY)
    assert held["tracks"] and {t["split"] for t in held["tracks"]} <= {"val", "test"}
    assert held["skipped"]["other_split_attempts"] > 0  # most pieces are training pieces, drawn and left out
    assert held["arguments"]["only_splits"] == ["val", "test"] and "--only-splits val,test" in held["command"]
    for t in held["tracks"]:  # the split is the piece's, as a full corpus of the same fractions gives it
        assert t["split"] == splits.piece_split(t["work"], held["split_fractions"]) != "train"
    with pytest.raises(UsageError, match="no usable train clips"):
        load_dataset("stems", tmp_path / "held", split="train", sample_rate=SR, min_samples=1024)
    for bad in (["training"], [], ["val", "nosuch"]):
        with pytest.raises(UsageError, match="only_splits"):
            music_corpus.build_music_corpus(tmp_path / "bad", soundfonts=[str(timgm)], score_cache=cache,
                                            only_splits=bad, **TINY)
    assert not (tmp_path / "bad").exists()


# --- performance and effects -----------------------------------------------------------------------------


def _pitch_track(x: np.ndarray, sr: int) -> np.ndarray:
    """Frame-wise fundamental (Hz): the peak of a 93 ms frame's zero-padded spectrum below 1 kHz, refined by
    parabolic interpolation; 20 ms hops (a 5.5 Hz vibrato lasts 180 ms)."""
    hop, n = int(0.02 * sr), 1024
    out = []
    for a in range(int(0.5 * sr), len(x) - n, hop):
        spec = np.abs(np.fft.rfft(x[a : a + n] * np.hanning(n), 16 * n))
        k = int(np.argmax(spec[: int(1000 / sr * 16 * n)]))
        y0, y1, y2 = np.log(spec[k - 1 : k + 2] + 1e-12)
        out.append((k + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)) * sr / (16 * n))
    return np.array(out)


def test_vibrato_moves_the_pitch_and_a_swell_shapes_the_envelope(timgm):
    note = [scores.Note(69, 0.0, 3.0, 100)]
    flat = render.render_notes(timgm, 73, note, SR, seconds=3.0)  # flute
    bends = [(0.0, 3.0, 0.0, 0.03)]
    vib = performance._controls(bends, [0.0], [0.0], 3.0, 40.0, 5.5, 0.1, lambda t: 0.0 * t, 0.0)
    wobbly = render.render_notes(timgm, 73, note, SR, seconds=3.0, controls=vib)
    steady, moving = _pitch_track(flat, SR), _pitch_track(wobbly, SR)
    cents = lambda f: 1200 * np.log2(f / np.median(f))  # noqa: E731
    assert np.std(cents(steady)) < 3.0 and np.std(cents(moving)) > 3 * max(np.std(cents(steady)), 2.0)

    swell = performance._swell_controls([(0.0, 3.0, 0.5)], 10.0)
    shaped = render.render_notes(timgm, 73, note, SR, seconds=3.0, controls=swell)
    env = lambda x, a, b: 10 * np.log10(np.mean(x[int(a * SR) : int(b * SR)] ** 2))  # noqa: E731
    rise_flat = env(flat, 1.3, 1.7) - env(flat, 0.1, 0.4)
    rise_swell = env(shaped, 1.3, 1.7) - env(shaped, 0.1, 0.4)
    assert rise_swell - rise_flat > 4.0  # about 10 dB of swell, less what the envelope already does
    # The level law cc_for_db inverts was measured on FluidR3; check it on this soundfont too.
    down = [(0.0, "cc", 11, performance.cc_for_db(-12.0) >> 7), (0.0, "cc", 43, performance.cc_for_db(-12.0) & 127)]
    quiet = render.render_notes(timgm, 73, note, SR, seconds=3.0, controls=down)
    assert env(quiet, 0.5, 2.5) - env(flat, 0.5, 2.5) == pytest.approx(-12.0, abs=1.5)


def test_parts_of_one_track_do_not_start_together(timgm):
    parts = {"a": [[60 + i % 5, float(i), 1.0, 0] for i in range(12)], "b": [[55 + i % 3, float(i), 1.0, 0] for i in range(12)]}
    rng = np.random.default_rng(0)
    timing = performance.draw_timing(parts, 90.0, 0.0, 0.1, 6.0, rng)
    a, _, pa = performance.perform_part(parts["a"], 0, "violin", timing, 6.0, rng)
    b, _, pb = performance.perform_part(parts["b"], 0, "cello", timing, 6.0, rng)
    gaps = [abs(x.start - y.start) for x, y in zip(a, b)]
    assert 0 < min(gaps) and max(gaps) < 0.1  # together, as players are, never sample-locked
    assert pa["detune_cents"] != pb["detune_cents"]


def test_notes_before_the_track_start_sound_from_its_first_sample():
    # A note held over from before the window, and a lead-in shorter than the lag and jitter can make.
    parts = {"a": [[60, -0.5, 1.0, 0]] + [[62 + i % 3, float(i), 1.0, 0] for i in range(6)]}
    for seed in range(20):
        rng = np.random.default_rng(seed)
        timing = performance.draw_timing(parts, 90.0, 0.0, 0.0, 4.0, rng)
        notes, _, _ = performance.perform_part(parts["a"], 0, "violin", timing, 4.0, rng)
        assert notes[0].start == 0.0 and all(n.start >= 0 and n.duration > 0 for n in notes)
        assert all(b.start > a.start for a, b in zip(notes, notes[1:]))


def test_room_reverb_lengthens_the_decay():
    ir, info = stem_effects.room_impulse_response(1.0, SR, np.random.default_rng(1))
    tail = 10 * np.log10(np.sum(ir[int(0.3 * SR) :] ** 2) / np.sum(ir[int(0.05 * SR) : int(0.3 * SR)] ** 2))
    assert -25 < tail < -3 and ir[0] == 1.0 and info["predelay_seconds"] > 0
    x = np.zeros(SR * 2)
    x[100] = 1.0
    late = slice(100 + int(0.2 * SR), None)
    wet, params = stem_effects.apply_effects(x, SR, {"rt60": 0.8}, np.random.default_rng(2), noise_probability=0)
    dry, dry_params = stem_effects.apply_effects(x, SR, {"rt60": 0.0}, np.random.default_rng(2), noise_probability=0)
    assert params["reverb"]["rt60"] == 0.8 and dry_params["reverb"] is None and params["noise"] is None
    assert np.sum(wet[late] ** 2) > 100 * np.sum(dry[late] ** 2) and len(wet) == len(x)


# --- training mixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    """A stems folder of steady tones at known, equal levels (RMS 0.1): six classes, four tracks."""
    root = tmp_path_factory.mktemp("tones")
    classes = ["violin", "viola", "cello", "bassoon", "flute", "horn"]
    t = np.arange(SR * 2) / SR
    for k in range(4):
        for j, c in enumerate(classes):
            (root / f"t{k}").mkdir(exist_ok=True)
            tone = 0.1 * np.sqrt(2) * np.sin(2 * np.pi * (200 + 50 * j + 7 * k) * t)
            sf.write(root / f"t{k}" / f"{c}.wav", tone, SR, subtype="FLOAT")
    return load_dataset("stems", root, split="train", sample_rate=SR, min_samples=1024)


def test_levels_stay_in_range_and_default_mixtures_are_unchanged(tones):
    plain = [sample_mixture(tones, 3, 4096, np.random.default_rng(s)) for s in range(5)]
    same = [sample_mixture(tones, 3, 4096, np.random.default_rng(s), level_range_db=0.0, hard_pairs=0.0)
            for s in range(5)]
    for (a, ca), (b, cb) in zip(plain, same):
        assert np.array_equal(a, b) and np.array_equal(ca, cb)
    rel = []
    rng = np.random.default_rng(7)
    for n in (1, 2, 3, 4):
        for _ in range(40):
            src, cls = sample_mixture(tones, n, 4096, rng, level_range_db=12.0)
            assert src.shape == (n, 4096) and len(set(cls.tolist())) == n
            db = 20 * np.log10(np.sqrt(np.mean(src**2, axis=1)) / 0.1)
            rel.extend((db[1:] - db[0]).tolist())
            assert abs(db.mean()) < 0.2  # gains centred on 0 dB
    rel = np.array(rel)
    assert rel.min() >= -12.05 and rel.max() <= 12.05 and rel.min() < -9 and rel.max() > 9


def test_hard_pairs_are_drawn_as_often_as_asked(tones):
    pairs = {frozenset(p) for p in mixture_draws.DEFAULT_HARD_PAIRS}
    names = tones.classes

    def share(p, coherent=0.0):
        rng = np.random.default_rng(3)
        hits = 0
        for _ in range(200):
            _, cls = sample_mixture(tones, 2, 1024, rng, hard_pairs=p, coherent=coherent)
            hits += frozenset(names[c] for c in cls) in pairs
        return hits / 200

    uniform = share(0.0)
    assert uniform < 0.6 and share(1.0) == 1.0 and share(1.0, coherent=1.0) == 1.0
    assert 0.6 < share(0.7) < 0.95
    with pytest.raises(UsageError):
        mixture_draws.parse_pairs(["violin"])


def test_training_settings_have_bounds_and_keep_todays_defaults():
    from sgnsep.training import TrainConfig, parse_overrides

    cfg = TrainConfig()
    assert (cfg.level_range_db, cfg.hard_pairs, cfg.hard_pair_classes) == (0.0, 0.0, [])
    for bad in ("level_range_db=-1", "hard_pairs=1.5", 'hard_pair_classes=["violin"]'):
        with pytest.raises(UsageError):
            parse_overrides(cfg, [bad, "classes=[\"a\",\"b\"]"])


def test_train_refuses_hard_pairs_of_classes_the_data_lacks(tones, tmp_path):
    r = subprocess.run([sys.executable, "-m", "sgnsep", "train", "--dataset", "stems", "--data-dir", str(tones.root),
                        "--out", str(tmp_path / "run"), "--device", "cpu", "--max-steps", "1", "--set", "hard_pairs=0.5",
                        "--set", 'hard_pair_classes=["violin/tuba"]'], capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "tuba" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()


# --- the command -----------------------------------------------------------------------------------------


def _cli(*args, cache=None):
    env = dict(os.environ, SGNSEP_SCORE_CACHE=str(cache)) if cache else dict(os.environ)
    return subprocess.run([sys.executable, "-m", "sgnsep", "data", "music", *map(str, args)],
                          capture_output=True, text=True, timeout=600, env=env)


def test_cli_bad_values_fail_in_one_line_and_leave_nothing(tmp_path, timgm):
    out = tmp_path / "x"
    for args in (["--hours", "-1"], ["--max-sources", "9"], ["--soundfonts", "nosuch"], ["--classes", "erhu"],
                 ["--min-seconds", "5", "--max-seconds", "2"], ["--soundfonts", "family:nosuch"],
                 ["--only-splits", "training"]):
        r = _cli("--out", out, *args, cache=tmp_path / "cache")
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), (args, r.stderr)
        assert not out.exists() and not (tmp_path / "cache").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    r = _cli("--out", foreign, "--hours", "0.001", "--soundfonts", timgm, cache=tmp_path / "cache")
    assert r.returncode == OutputError.exit_code and "not empty" in r.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


def test_cli_writes_a_corpus_and_refuses_to_write_over_it(tmp_path, timgm, corpus):
    _, _, cache = corpus
    out = tmp_path / "corpus"
    args = ["--out", out, "--hours", 4 / 3600, "--min-seconds", 2, "--max-seconds", 2, "--soundfonts", timgm,
            "--seed", 1]
    r = _cli(*args, cache=cache)
    assert r.returncode == 0 and "wrote" in r.stderr and "tracks" in r.stderr, r.stderr
    before = _files(out)
    again = _cli(*args, cache=cache)
    assert again.returncode == OutputError.exit_code and "--overwrite" in again.stderr
    assert _cli(*args, "--overwrite", cache=cache).returncode == 0
    assert _files(out) == before
