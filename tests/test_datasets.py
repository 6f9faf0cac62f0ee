"""Dataset loaders on small trees written in each dataset's official layout, lazy windows, and sampling.

Nothing is downloaded: every test writes short synthetic audio where the real dataset keeps its files
(MUSIC's JSON lists + audio/<class>/<id>.wav, FUSS's ssdata + .jams + FSD50K ground truth, MUSDB18-HQ,
VGG-Sound's CSV + clips), with one corrupt and one too-short file among them.
"""

from __future__ import annotations

import json
import string

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from sgnsep import datasets as D
from sgnsep.datasets import (
    DATASETS,
    Clip,
    DatasetNotFound,
    SolosDataset,
    default_data_dir,
    load_dataset,
    music_split,
    rank_splits,
    sample_mixture,
    vggsound_clip_id,
    vggsound_split,
)
from sgnsep.core.errors import UsageError

SR = 11025  # the model rate
MIN = 4096  # min_samples: files under MIN // 4 samples at SR are "too short"
SEG = 2048


def noise(seconds: float, sr: int, rng, channels: int = 1) -> np.ndarray:
    """A few random tones plus a little noise, so that every window differs."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    out = np.zeros((n, channels), np.float32)
    for c in range(channels):
        for _ in range(3):
            out[:, c] += 0.1 * np.sin(2 * np.pi * rng.uniform(100, 3000) * t + rng.uniform(0, 6.3))
        out[:, c] += 0.02 * rng.standard_normal(n)
    return out if channels > 1 else out[:, 0]


def write(path, seconds, sr, rng, channels=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, noise(seconds, sr, rng, channels), sr)


def write_corrupt(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt not really a wav file")


def write_short(path, sr=SR):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.full(40, 0.1, np.float32), sr)


def model_rate_file(path) -> np.ndarray:
    """The whole file read directly, downmixed and resampled to SR the obvious way."""
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = torch.from_numpy(data.mean(axis=1)[None])
    if rate != SR:
        mono = AF.resample(mono, rate, SR)
    return mono[0].numpy()


def youtube_ids(rng, want: dict[str, int], split_of) -> list[str]:
    """Random 11-character YouTube-like ids until ``want[split]`` of each split are found."""
    alphabet = string.ascii_letters + string.digits + "-_"
    need, out = dict(want), []
    while any(need.values()):
        vid = "".join(rng.choice(list(alphabet), 11))
        s = split_of(vid)
        if need.get(s, 0) > 0:
            need[s] -= 1
            out.append(vid)
    return out


def load_all(name, root, **kw):
    return {s: load_dataset(name, root, split=s, sample_rate=SR, min_samples=MIN, **kw) for s in D.SPLITS}


def check_splits_and_sampling(sets, *, lazy_expected=None):
    """Disjoint splits, consistent classes, sample_mixture shapes/distinctness/determinism, exact windows."""
    paths = {s: {c.path for c in ds.clips} for s, ds in sets.items()}
    assert not paths["train"] & paths["val"] and not paths["train"] & paths["test"] and not paths["val"] & paths["test"]
    classes = sets["train"].classes
    for ds in sets.values():
        assert ds.classes == classes
        assert set(ds.by_class) == set(range(len(classes)))
        if lazy_expected is not None:
            assert ds.cached is (not lazy_expected)
            assert all(c.cached is (not lazy_expected) for c in ds.clips)
    for ds in sets.values():
        usable = [i for i, v in ds.by_class.items() if v]
        n = min(2, len(usable))
        a = [sample_mixture(ds, n, SEG, np.random.default_rng(5)) for _ in range(3)]
        b = [sample_mixture(ds, n, SEG, np.random.default_rng(5)) for _ in range(3)]
        for (sa, ca), (sb, cb) in zip(a, b):
            assert sa.shape == (n, SEG) and sa.dtype == np.float32 and ca.shape == (n,) and ca.dtype == np.int64
            assert len(set(ca.tolist())) == n and set(ca.tolist()) <= set(usable)
            np.testing.assert_array_equal(sa, sb)
            np.testing.assert_array_equal(ca, cb)
            assert np.all(np.sqrt(np.mean(sa**2, axis=1)) > 1e-3)
        # every window a clip returns is the file read whole and resampled, then sliced
        for clip in ds.clips[:3]:
            whole = model_rate_file(clip.path)
            assert clip.num_samples == len(whole) == len(clip)
            for start, stop in ((0, 300), (len(whole) // 3, len(whole) // 3 + SEG), (len(whole) - 100, len(whole) + 50)):
                np.testing.assert_allclose(clip.read(start, stop), whole[start:stop], atol=1e-5)
            np.testing.assert_allclose(clip.audio, whole, atol=1e-5)


# --- lazy clips ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate,channels", [(SR, 1), (22050, 1), (44100, 2), (16000, 2), (48000, 1)])
def test_lazy_window_equals_whole_file_resampled(tmp_path, rate, channels):
    rng = np.random.default_rng(rate)
    path = tmp_path / "x.wav"
    write(path, 0.9, rate, rng, channels)
    info = sf.info(path)
    clip = Clip(0, path, frames=info.frames, sample_rate=rate, rate=SR)
    whole = model_rate_file(path)
    assert len(clip) == len(whole) and not clip.cached
    for start in (0, 1, 17, 999, len(whole) - SEG, len(whole) - 3):
        np.testing.assert_allclose(clip.read(start, start + SEG), whole[start : start + SEG], atol=1e-5)
    if rate == SR:  # no resampling: the window is exactly the file's samples
        direct, _ = sf.read(path, start=500, stop=500 + SEG, dtype="float32")
        np.testing.assert_array_equal(clip.read(500, 500 + SEG), direct)
    cached = Clip(0, path, frames=info.frames, sample_rate=rate, rate=SR)
    cached.load()
    assert cached.cached
    np.testing.assert_allclose(cached.read(100, 100 + SEG), clip.read(100, 100 + SEG), atol=1e-5)
    np.testing.assert_allclose(clip.audio, whole, atol=1e-5)


@pytest.fixture
def solos(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "solos"
    for cls, rate in (("cello", 22050), ("flute", SR), ("violin", 44100)):
        for i in range(15):  # + 1 bad file: 16 per class, 2 of them in test and 2 in validation
            write(root / cls / f"{cls}{i}.wav", 0.4, rate, rng, channels=2 if cls == "violin" else 1)
    write_corrupt(root / "cello" / "broken.wav")
    write_short(root / "flute" / "tiny.wav")
    return root


def test_solos_lazy_and_cached_give_the_same_mixtures(solos):
    cached = {s: SolosDataset(solos, split=s, sample_rate=SR, min_samples=MIN) for s in D.SPLITS}
    lazy = {s: SolosDataset(solos, split=s, sample_rate=SR, min_samples=MIN, cache_bytes=0) for s in D.SPLITS}
    check_splits_and_sampling(cached, lazy_expected=False)
    check_splits_and_sampling(lazy, lazy_expected=True)
    for s in D.SPLITS:
        assert [c.path for c in cached[s].clips] == [c.path for c in lazy[s].clips]
        assert cached[s].skipped == lazy[s].skipped
        for _ in range(3):
            rng_a, rng_b = np.random.default_rng(11), np.random.default_rng(11)
            sa, ca = sample_mixture(cached[s], 3, SEG, rng_a)
            sb, cb = sample_mixture(lazy[s], 3, SEG, rng_b)
            np.testing.assert_array_equal(ca, cb)
            np.testing.assert_allclose(sa, sb, atol=1e-5)
    # the corrupt and the too-short file are skipped in whichever split they fall, with a reason
    skipped = dict(kv for s in D.SPLITS for kv in cached[s].skipped)
    assert set(skipped) == {"cello/broken.wav", "flute/tiny.wav"}
    assert "too short" in skipped["flute/tiny.wav"] and "not a readable audio file" in skipped["cello/broken.wav"]
    # `clip.audio` is still the whole clip (training.py sums len(c.audio))
    clip = lazy["train"].clips[0]
    assert len(clip.audio) == clip.num_samples
    # load_dataset("solos") is SolosDataset
    ds = load_dataset("solos", solos, split="train", sample_rate=SR, min_samples=MIN)
    assert isinstance(ds, SolosDataset) and [c.path for c in ds.clips] == [c.path for c in cached["train"].clips]


def test_cache_budget_from_environment(solos, monkeypatch):
    monkeypatch.setenv("SGNSEP_DATA_CACHE_MB", "0")
    assert not SolosDataset(solos, split="train", sample_rate=SR, min_samples=MIN).cached
    monkeypatch.setenv("SGNSEP_DATA_CACHE_MB", "5")
    assert SolosDataset(solos, split="train", sample_rate=SR, min_samples=MIN).cached
    monkeypatch.setenv("SGNSEP_DATA_CACHE_MB", "lots")
    with pytest.raises(UsageError, match="SGNSEP_DATA_CACHE_MB"):
        SolosDataset(solos, split="train", sample_rate=SR, min_samples=MIN)


def test_a_file_damaged_after_loading_does_not_stop_sampling(tmp_path):
    rng = np.random.default_rng(2)
    for cls in ("a", "b"):
        write(tmp_path / cls / "one.wav", 0.5, SR, rng)
    ds = SolosDataset(tmp_path, split="train", sample_rate=SR, min_samples=MIN, cache_bytes=0)
    write_corrupt(tmp_path / "b" / "one.wav")
    for seed in range(3):
        sources, classes = sample_mixture(ds, 2, SEG, np.random.default_rng(seed))
        assert sources.shape == (2, SEG)
        assert not sources[list(classes).index(1)].any()
    assert list(ds.read_errors) == [str(tmp_path / "b" / "one.wav")]


# --- stems ---------------------------------------------------------------------------------------------


def test_stems_split_by_track(tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "stems"
    tracks = [f"Song {i:02d}" for i in range(12)]
    for t in tracks:
        for cls in ("violin", "cello", "Flute"):
            write(root / t / f"{cls}.wav", 0.5, 22050, rng)
        write(root / t / "mixture.wav", 0.5, 22050, rng)
    write_corrupt(root / tracks[0] / "cello.wav")
    write_short(root / tracks[1] / "violin.wav")
    (root / tracks[2] / "notes.txt").write_text("not audio")
    sets = load_all("stems", root)
    check_splits_and_sampling(sets)
    assert sets["train"].classes == ["cello", "flute", "violin"]
    expected = rank_splits(tracks)
    for s, ds in sets.items():
        got_tracks = {c.path.parent.name for c in ds.clips} | {k.split("/")[0] for k, _ in ds.skipped}
        assert got_tracks == {t for t in tracks if expected[t] == s}
        assert not any(c.path.stem == "mixture" for c in ds.clips)
    total = sum(len(ds.clips) for ds in sets.values())
    assert total == len(tracks) * 3 - 2
    skipped = dict(kv for ds in sets.values() for kv in ds.skipped)
    assert set(skipped) == {f"{tracks[0]}/cello.wav", f"{tracks[1]}/violin.wav"}


def test_coherent_mixtures_take_stems_of_one_track_at_one_offset(tmp_path):
    rng = np.random.default_rng(4)
    root = tmp_path / "stems"
    tracks = [f"t{i:02d}" for i in range(10)]
    for t in tracks:
        for cls in ("violin", "cello", "flute"):
            write(root / t / f"{cls}.wav", 1.0, SR, rng)
    ds = load_dataset("stems", root, split="train", sample_rate=SR, min_samples=MIN)
    assert ds.tracks and all(len({c.path.parent for c in t}) == 1 and len(t) == 3 for t in ds.tracks)
    # where each 4-sample pattern occurs: (track folder, class, offset); noise makes them unique
    where = {}
    for c in ds.clips:
        audio = c.audio
        for n in range(len(audio) - 3):
            where[audio[n : n + 4].tobytes()] = (c.path.parent, c.cls, n)
    draw = np.random.default_rng(0)
    for _ in range(20):
        sources, classes = sample_mixture(ds, 2, 2000, draw, coherent=1.0)
        assert len(set(classes.tolist())) == 2
        hits = [where[sources[i, :4].tobytes()] for i in range(2)]
        assert hits[0][0] == hits[1][0], "the two stems come from different tracks"
        assert hits[0][2] == hits[1][2], "the two stems are not aligned"
        assert [h[1] for h in hits] == classes.tolist()
    # coherent=0 keeps the plain draw: the same generator state gives the same mixture as before the option
    a = sample_mixture(ds, 2, 2000, np.random.default_rng(1))
    b = sample_mixture(ds, 2, 2000, np.random.default_rng(1), coherent=0.0)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    # solo layouts have no tracks; coherent draws fall back to independent ones
    solos = tmp_path / "solos"
    for cls in ("violin", "cello"):
        for i in range(4):
            write(solos / cls / f"{i}.wav", 1.0, SR, rng)
    sds = load_dataset("solos", solos, split="train", sample_rate=SR, min_samples=MIN)
    assert sds.tracks == []
    assert sample_mixture(sds, 2, 2000, draw, coherent=1.0)[0].shape == (2, 2000)


# --- MUSIC ---------------------------------------------------------------------------------------------


def make_music(root, rng, *, json_name="MUSIC_solo_videos.json", class_list=D.MUSIC11_CLASSES, with_audio=("cello", "flute", "violin", "erhu")):
    """The official JSON (every class listed) and audio for some classes; one listed training video of each
    class but erhu was not downloaded."""
    videos, on_disk = {}, {}
    for cls in class_list:
        ids = youtube_ids(rng, {"train": 3, "val": 1, "test": 1}, music_split)
        videos[cls] = ids
        if cls in with_audio:
            missing = next(v for v in ids if music_split(v) == "train")
            on_disk[cls] = [v for v in ids if v != missing or cls == "erhu"]
            for vid in on_disk[cls]:
                rate = 44100 if cls == "violin" else 22050
                write(root / "audio" / cls / f"{vid}.wav", 0.5, rate, rng, channels=2 if cls == "violin" else 1)
    root.mkdir(parents=True, exist_ok=True)
    (root / json_name).write_text(json.dumps({"version": 1.0, "videos": videos}, indent=4))
    return videos, on_disk


def test_music_official_lists_and_downloaded_audio(tmp_path):
    rng = np.random.default_rng(4)
    root = tmp_path / "music"
    videos, on_disk = make_music(root, rng)
    # the duet list and unlisted files are ignored
    (root / "MUSIC_duet_videos.json").write_text(json.dumps({"videos": {"cello violin": ["abcdefghijk"]}}))
    write(root / "audio" / "cello violin" / "abcdefghijk.wav", 0.5, 22050, rng)
    write(root / "audio" / "cello" / "not_listed_.wav", 0.5, 22050, rng)
    # erhu: one corrupt download, one too short, one only as a video
    erhu = videos["erhu"]
    write_corrupt(root / "audio" / "erhu" / f"{erhu[0]}.wav")
    write_short(root / "audio" / "erhu" / f"{erhu[1]}.wav")
    (root / "audio" / "erhu" / f"{erhu[2]}.wav").unlink()
    (root / "audio" / "erhu" / f"{erhu[2]}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    sets = load_all("music", root)
    check_splits_and_sampling(sets)
    assert sets["train"].classes == ["cello", "erhu", "flute", "violin"]  # MUSIC-11 order, classes with audio
    for s, ds in sets.items():
        for clip in ds.clips:
            vid = clip.path.stem
            assert music_split(vid) == s and vid in videos[ds.classes[clip.cls]]
        skipped = dict(ds.skipped)
        for cls in ds.classes:
            for vid in videos[cls]:
                if music_split(vid) != s:
                    continue
                listed = [c for c in ds.clips if c.path.stem == vid]
                if vid in on_disk.get(cls, []) and vid not in erhu[:3]:
                    assert len(listed) == 1
                else:
                    assert not listed and any(vid in k for k in skipped)
    skipped = dict(kv for ds in sets.values() for kv in ds.skipped)
    missing = next(v for v in videos["cello"] if v not in on_disk["cello"])
    assert "not downloaded" in skipped[f"audio/cello/{missing}"]
    assert "not a readable audio file" in skipped[f"audio/erhu/{erhu[0]}.wav"]
    assert "too short" in skipped[f"audio/erhu/{erhu[1]}.wav"]
    assert "ffmpeg" in skipped[f"audio/erhu/{erhu[2]}.mp4"] and "mp4" in skipped[f"audio/erhu/{erhu[2]}.mp4"]
    # 4 classes x 4 downloaded + erhu's 5th, minus 3 unusable
    assert sum(len(ds.clips) for ds in sets.values()) == 4 * 4 + 1 - 3
    # listed-but-missing videos of classes without any audio are not counted (those classes are not used)
    assert not any("/tuba/" in k for k in skipped)
    # a chosen class subset, in the order given
    ds = load_dataset("music", root, split="train", sample_rate=SR, min_samples=MIN, classes=["violin", "cello"])
    assert ds.classes == ["violin", "cello"] and {c.cls for c in ds.clips} == {0, 1}
    with pytest.raises(UsageError, match="piano"):
        load_dataset("music", root, split="train", sample_rate=SR, min_samples=MIN, classes=["piano"])


def test_music21_list_and_same_splits_as_music(tmp_path):
    rng = np.random.default_rng(5)
    root = tmp_path / "music21"
    _, on_disk = make_music(root, rng, json_name="MUSIC21_solo_videos.json", class_list=D.MUSIC21_CLASSES,
                           with_audio=("bagpipe", "cello", "pipa"))
    bad = next(v for v in on_disk["bagpipe"] if music_split(v) == "train")
    (root / "audio" / "bagpipe" / f"{bad}.wav").unlink()
    write_corrupt(root / "audio" / "bagpipe" / f"{bad}.wav")
    sets = load_all("music21", root)
    check_splits_and_sampling(sets)
    assert sets["train"].classes == ["bagpipe", "cello", "pipa"]
    assert "not a readable audio file" in dict(sets["train"].skipped)[f"audio/bagpipe/{bad}.wav"]
    assert len(D.MUSIC21_CLASSES) == 21 and set(D.MUSIC11_CLASSES) < set(D.MUSIC21_CLASSES)
    # `music` reads the MUSIC-21 list when it is the only one, restricted to the 11 classes, same splits
    music = load_all("music", root)
    assert music["train"].classes == ["cello"]
    for s in D.SPLITS:
        assert {c.path for c in music[s].clips} == {c.path for c in sets[s].clips if sets[s].classes[c.cls] == "cello"}


def test_music_not_found_explains_what_to_do(tmp_path):
    with pytest.raises(DatasetNotFound) as err:
        load_dataset("music", tmp_path / "nowhere", split="train", sample_rate=SR, min_samples=MIN)
    text = str(err.value)
    for needle in ("MUSIC", "Zhao", "11 instrument", "MUSIC_solo_videos.json", '"videos"', "audio/<class>/<youtube_id>.wav",
                   ".mp3", "sgnsep data synth --out SYNTH_DIR", "sgnsep train --dataset solos --data-dir SYNTH_DIR",
                   str(tmp_path / "nowhere")):
        assert needle in text, needle
    assert isinstance(err.value, UsageError) and err.value.exit_code == 2
    # the folder exists but has no list / a list but no audio
    (tmp_path / "m").mkdir()
    with pytest.raises(DatasetNotFound, match="MUSIC_solo_videos.json"):
        load_dataset("music", tmp_path / "m", split="train", sample_rate=SR, min_samples=MIN)
    (tmp_path / "m" / "MUSIC_solo_videos.json").write_text(json.dumps({"videos": {"cello": ["abcdefghijk"]}}))
    with pytest.raises(DatasetNotFound, match="none of the 1 solo videos"):
        load_dataset("music", tmp_path / "m", split="train", sample_rate=SR, min_samples=MIN)
    (tmp_path / "m" / "MUSIC_solo_videos.json").write_text("{not json")
    with pytest.raises(DatasetNotFound, match="not a MUSIC video list"):
        load_dataset("music", tmp_path / "m", split="train", sample_rate=SR, min_samples=MIN)
    with pytest.raises(DatasetNotFound) as err:
        load_dataset("music21", tmp_path / "m", split="train", sample_rate=SR, min_samples=MIN)
    assert "MUSIC21_solo_videos.json" in str(err.value) and "sgnsep data synth" in str(err.value)


# --- FUSS ----------------------------------------------------------------------------------------------

FSD_LABELS = {
    "Bark": "Bark,Dog,Domestic_animals_and_pets,Animal",
    "Acoustic_guitar": "Acoustic_guitar,Guitar,Plucked_string_instrument,Musical_instrument,Music",
    "Rain": "Rain,Water,Natural_sounds",
    "Typing": "Typing,Computer_keyboard,Domestic_sounds_and_home_sounds",
}
FSD_MIDS = {"Bark": "/m/05tny_,/m/0bt9lr,/m/068hy,/m/0jbk", "Acoustic_guitar": "/m/042v_gx,/m/0342h,/m/0fx80y,/m/04szw,/m/04rlf",
            "Rain": "/m/06mb1,/m/0838f,/m/059j3w", "Typing": "/m/0lyf6,/m/01m2v,/t/dd00071"}


def jams_for(events):
    """scaper's JAMS: one 'scaper' annotation whose observations are the background then the foregrounds."""
    data = [
        {"time": t, "duration": d, "confidence": 1.0,
         "value": {"label": "sound", "source_file": f"/tmp/fuss/fsd_data/train/sound/{fid}.wav", "source_time": 0.0,
                   "event_time": t, "event_duration": d, "snr": 10.0, "role": role, "pitch_shift": None,
                   "time_stretch": None}}
        for role, fid, t, d in events
    ]
    return {
        "annotations": [{
            "annotation_metadata": {"curator": {"name": "", "email": ""}, "annotator": {}, "version": "",
                                    "corpus": "", "annotation_tools": "", "annotation_rules": "", "validation": "",
                                    "data_source": ""},
            "namespace": "scaper", "data": data,
            "sandbox": {"scaper": {"duration": 10.0, "original_duration": 10.0, "ref_db": -55, "n_events": len(data)}},
            "time": 0, "duration": 10.0,
        }],
        "file_metadata": {"title": "", "artist": "", "release": "", "duration": 10.0, "identifiers": {},
                          "jams_version": "0.3.4"},
        "sandbox": {},
    }


def make_fuss(root, rng):
    """ssdata/ with 6 train, 3 validation, 3 eval examples; FSD50K.ground_truth/{dev,eval}.csv."""
    labels = list(FSD_LABELS)
    fsd = {}  # freesound id -> label
    dev_rows, eval_rows = [], []
    next_id = 1000
    base = root / "ssdata"
    for folder, count in (("train", 6), ("validation", 3), ("eval", 3)):
        lines = []
        for n in range(count):
            name = f"example{n:05d}"
            n_fg = n % 3 + 1
            events, rels = [], [f"{folder}/{name}.wav"]
            for k, role in enumerate(["background"] + ["foreground"] * n_fg):
                idx = k if role == "background" else k - 1
                label = labels[(n + k) % len(labels)]
                next_id += 1
                fsd[next_id] = label
                row = f'{next_id},"{FSD_LABELS[label]}","{FSD_MIDS[label]}"'
                if folder == "eval":
                    eval_rows.append(row)
                else:
                    dev_rows.append(row + (",train" if folder == "train" else ",val"))
                events.append((role, next_id, 0.0 if role == "background" else 1.5 * idx, 10.0 if role == "background" else 2.0))
                rel = f"{folder}/{name}_sources/{role}{idx}_sound.wav"
                rels.append(rel)
                write(base / rel, 0.5, 16000, rng)
            write(base / folder / f"{name}.wav", 0.5, 16000, rng)
            (base / folder / f"{name}.jams").write_text(json.dumps(jams_for(events), indent=2))
            (base / folder / f"{name}.txt").write_text(
                "".join(f"{t}\t{t + d}\tsound\n" for role, _, t, d in events if role == "foreground"))
            lines.append("\t".join(rels))
        (base / f"{folder}_example_list.txt").write_text("\n".join(lines) + "\n")
    gt = root / "FSD50K.ground_truth"
    gt.mkdir(parents=True)
    (gt / "dev.csv").write_text("fname,labels,mids,split\n" + "\n".join(dev_rows) + "\n")
    (gt / "eval.csv").write_text("fname,labels,mids\n" + "\n".join(eval_rows) + "\n")
    (gt / "vocabulary.csv").write_text("".join(f"{i},{l},{FSD_MIDS[l].split(',')[0]}\n" for i, l in enumerate(labels)))
    return fsd


def test_fuss_sources_labelled_through_jams_and_fsd50k(tmp_path):
    rng = np.random.default_rng(6)
    root = tmp_path / "fuss"
    make_fuss(root, rng)
    base = root / "ssdata"
    write_corrupt(base / "train/example00000_sources/background0_sound.wav")
    write_short(base / "train/example00001_sources/foreground0_sound.wav", 16000)
    # a source whose FSD50K clip has no ground-truth row
    jams = json.loads((base / "train/example00002.jams").read_text())
    jams["annotations"][0]["data"][1]["value"]["source_file"] = "/x/fsd_data/train/sound/999999.wav"
    (base / "train/example00002.jams").write_text(json.dumps(jams))
    sets = load_all("fuss", root)
    check_splits_and_sampling(sets)
    assert sets["train"].classes == sorted(FSD_LABELS)
    folder_of = {"train": "train", "val": "validation", "test": "eval"}
    n_sources = {"train": sum(n % 3 + 2 for n in range(6)), "val": sum(n % 3 + 2 for n in range(3)),
                 "test": sum(n % 3 + 2 for n in range(3))}
    for s, ds in sets.items():
        assert all(c.path.parent.parent.name == folder_of[s] for c in ds.clips)
        assert not any(c.path.name.startswith("example") for c in ds.clips)  # mixtures are not clips
        assert len(ds.clips) + len(ds.skipped) == n_sources[s]
    skipped = dict(sets["train"].skipped)
    assert "not a readable audio file" in skipped["ssdata/train/example00000_sources/background0_sound.wav"]
    assert "too short" in skipped["ssdata/train/example00001_sources/foreground0_sound.wav"]
    assert "999999" in skipped["ssdata/train/example00002_sources/foreground0_sound.wav"]
    assert not sets["val"].skipped and not sets["test"].skipped
    # labels follow the jams: example00003 (n=3): background label 3, foreground0 label 0 ("Bark" order)
    ex3 = {c.path.name: sets["train"].classes[c.cls] for c in sets["train"].clips if c.path.parent.name == "example00003_sources"}
    labels = list(FSD_LABELS)
    assert ex3 == {"background0_sound.wav": labels[3], "foreground0_sound.wav": labels[0]}


def test_fuss_without_fsd50k_labels_says_where_to_get_them(tmp_path):
    root = tmp_path / "fuss"
    make_fuss(root, np.random.default_rng(7))
    for f in (root / "FSD50K.ground_truth").iterdir():
        f.unlink()
    with pytest.raises(DatasetNotFound) as err:
        load_dataset("fuss", root, split="train", sample_rate=SR, min_samples=MIN)
    text = str(err.value)
    assert "FSD50K.ground_truth" in text and "zenodo.org/record/4060432" in text and "sgnsep data synth" in text


# --- MUSDB18 -------------------------------------------------------------------------------------------


def test_musdb18_hq_official_splits(tmp_path):
    rng = np.random.default_rng(8)
    root = tmp_path / "musdb18hq"
    train = ["Actions - One Minute Smile", "Leaf - Summerghost", "A Classic Education - NightOwl",
             "ANiMAL - Clinic A", "Actions - Devil's Words"]
    test = ["AM Contra - Heart Peripheral", "Al James - Schoolboy Facination"]
    for folder, tracks in (("train", train), ("test", test)):
        for t in tracks:
            for stem in ("mixture", "drums", "bass", "other", "vocals"):
                write(root / folder / t / f"{stem}.wav", 0.4, 44100, rng, channels=2)
    write_corrupt(root / "train" / train[2] / "bass.wav")
    write_short(root / "train" / train[3] / "drums.wav", 44100)
    (root / "test" / test[0] / "vocals.wav").unlink()
    sets = load_all("musdb18", root)
    check_splits_and_sampling(sets)
    assert sets["train"].classes == ["drums", "bass", "other", "vocals"]
    tracks = {s: {c.path.parent.name for c in ds.clips} for s, ds in sets.items()}
    assert tracks == {"train": set(train[2:]), "val": set(train[:2]), "test": set(test)}
    assert len(D.MUSDB_VALIDATION_TRACKS) == 14 and set(train[:2]) <= set(D.MUSDB_VALIDATION_TRACKS)
    assert not any(c.path.stem == "mixture" for ds in sets.values() for c in ds.clips)
    assert len(sets["train"].clips) == 3 * 4 - 2 and len(sets["val"].clips) == 8 and len(sets["test"].clips) == 7
    assert dict(sets["test"].skipped) == {f"test/{test[0]}/vocals.wav": "missing"}
    skipped = dict(sets["train"].skipped)
    assert set(skipped) == {f"train/{train[2]}/bass.wav", f"train/{train[3]}/drums.wav"}


def test_musdb18_compressed_stems_are_explained(tmp_path):
    root = tmp_path / "musdb18"
    (root / "train").mkdir(parents=True)
    (root / "train" / "Leaf - Summerghost.stem.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    with pytest.raises(DatasetNotFound, match="musdbconvert"):
        load_dataset("musdb18", root, split="train", sample_rate=SR, min_samples=MIN)


# --- VGG-Sound -----------------------------------------------------------------------------------------


def test_vggsound_csv_and_clips(tmp_path):
    rng = np.random.default_rng(9)
    root = tmp_path / "vggsound"
    labels = ["dog barking", "male speech, man speaking", "playing violin, fiddle"]
    rows, clip_ids = [], {}
    for label in labels:
        train_ids = youtube_ids(rng, {"train": 3, "val": 1}, lambda v: vggsound_split("train", vggsound_clip_id(v, 30)))
        test_ids = youtube_ids(rng, {"train": 2}, lambda v: "train")
        for vid, split in [(v, "train") for v in train_ids] + [(v, "test") for v in test_ids]:
            rows.append((vid, 30, label, split))
            clip_ids[vggsound_clip_id(vid, 30)] = (label, vggsound_split(split, vggsound_clip_id(vid, 30)))
    root.mkdir()
    import csv as _csv

    with open(root / "vggsound.csv", "w", newline="") as fh:
        _csv.writer(fh).writerows(rows)
    ids = list(clip_ids)
    for i, cid in enumerate(ids):
        ext = ".flac" if i % 2 else ".wav"
        write(root / "audio" / f"{cid}{ext}", 0.5, 16000, rng)
    # one clip only as the released mp4, one listed but absent, one corrupt, one too short
    (root / "audio" / f"{ids[0]}.wav").unlink()
    (root / "video").mkdir()
    (root / "video" / f"{ids[0]}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    (root / "audio" / f"{ids[1]}.flac").unlink()
    write_corrupt(root / "audio" / f"{ids[2]}.wav")
    (root / "audio" / f"{ids[3]}.flac").unlink()
    write_short(root / "audio" / f"{ids[3]}.flac", 16000)
    assert ids[0].endswith("_000030")
    sets = load_all("vggsound", root)
    check_splits_and_sampling(sets)
    assert sets["train"].classes == sorted(labels)
    for s, ds in sets.items():
        for clip in ds.clips:
            label, split = clip_ids[clip.path.stem]
            assert split == s and ds.classes[clip.cls] == label
        assert len(ds.clips) + len(ds.skipped) == sum(1 for v in clip_ids.values() if v[1] == s)
    skipped = dict(kv for ds in sets.values() for kv in ds.skipped)
    assert "mp4" in skipped[f"video/{ids[0]}.mp4"] and "ffmpeg" in skipped[f"video/{ids[0]}.mp4"]
    assert "not on disk" in skipped[ids[1]]
    assert "not a readable audio file" in skipped[f"audio/{ids[2]}.wav"]
    assert "too short" in skipped[f"audio/{ids[3]}.flac"]
    assert len(skipped) == 4


# --- registry, defaults, not-found texts ---------------------------------------------------------------


def test_registry_and_default_folders(tmp_path, monkeypatch):
    assert set(DATASETS) == {"solos", "stems", "music", "music21", "fuss", "musdb18", "vggsound"}
    for name, spec in DATASETS.items():
        assert spec.name == name and spec.description and spec.layout.count("\n") >= 1 and callable(spec.loader)
    monkeypatch.setenv("SGNSEP_DATA", str(tmp_path / "data"))
    assert default_data_dir("musdb18") == tmp_path / "data" / "musdb18"
    monkeypatch.delenv("SGNSEP_DATA")
    assert str(default_data_dir("music")).endswith(".cache/sgnsep/data/music")
    with pytest.raises(UsageError, match="vggsound"):
        default_data_dir("audioset")
    with pytest.raises(UsageError, match="Unknown split"):
        load_dataset("music", tmp_path, split="dev", sample_rate=SR, min_samples=MIN)


@pytest.mark.parametrize("name,needle", [
    ("solos", "DIR/<class>/<clip>.wav"), ("stems", "DIR/<track>/<class>.wav"), ("music", "MUSIC_solo_videos.json"),
    ("music21", "MUSIC21_solo_videos.json"), ("fuss", "FUSS_ssdata.tar.gz"), ("musdb18", "mixture,drums,bass,other,vocals"),
    ("vggsound", "vggsound.csv"),
])
def test_missing_folder_gives_dataset_not_found(tmp_path, monkeypatch, name, needle):
    monkeypatch.setenv("SGNSEP_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetNotFound) as err:
        load_dataset(name, None, split="train", sample_rate=SR, min_samples=MIN)  # the default folder
    text = str(err.value)
    assert str(tmp_path / "data" / name) in text and needle in text and "sgnsep data synth --out SYNTH_DIR" in text
    assert text.splitlines()[0].endswith("does not exist.")
    assert err.value.dataset == name
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFound):  # the folder exists but holds nothing of the dataset
        load_dataset(name, tmp_path / "empty", split="train", sample_rate=SR, min_samples=MIN)


def test_classes_missing_from_a_split_are_never_drawn(tmp_path):
    rng = np.random.default_rng(10)
    root = tmp_path / "musdb"
    for t in ("Leaf - Summerghost", "Some - Song"):
        folder = "train"
        for stem in ("drums", "bass", "other", "vocals"):
            if t == "Leaf - Summerghost" and stem == "vocals":
                continue  # the validation track has no vocals
            write(root / folder / t / f"{stem}.wav", 0.4, 22050, rng)
    write(root / "test" / "T - T" / "drums.wav", 0.4, 22050, rng)
    val = load_dataset("musdb18", root, split="val", sample_rate=SR, min_samples=MIN)
    assert val.classes == ["drums", "bass", "other", "vocals"] and val.empty_classes == ["vocals"]
    for seed in range(20):
        _, classes = sample_mixture(val, 3, SEG, np.random.default_rng(seed))
        assert 3 not in classes.tolist()
    with pytest.raises(UsageError, match="only 3 of the 4 classes"):
        sample_mixture(val, 4, SEG, np.random.default_rng(0))
    assert "no clips for vocals" in val.summary()


def test_training_runs_on_lazily_read_clips(solos, tmp_path, monkeypatch):
    """`sgnsep train` (which builds a SolosDataset) works when the split is read lazily, not cached."""
    from sgnsep.training import TrainConfig, train
    from tests.tone_model import TINY, TINY_AUDIO

    monkeypatch.setenv("SGNSEP_DATA_CACHE_MB", "0")
    model = {k: getattr(TINY, k) for k in ("unet_ngf", "embed_dim", "depth", "num_heads", "patch_size", "unet_depth")}
    audio = {k: getattr(TINY_AUDIO, k) for k in ("segment_samples", "n_fft", "warp_bins")}
    cfg = TrainConfig(data_dir=str(solos), optimizer="adam", batch_size=4, epochs=1, steps_per_epoch=2,
                      checkpoint_every=2, val_mixtures=4, model=model, audio=audio)
    result = train(cfg, tmp_path / "run")
    assert result.steps == 2 and (tmp_path / "run" / "best" / "model.safetensors").is_file()
