"""`sgnsep eval` end to end on folders the tests write: stems and solos layouts, baselines, silent cases."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from sgnsep import Separator
from sgnsep.evaluation import evaluate as ev
from sgnsep.core.errors import InputAudioError, UsageError
from tests.test_separate import run_cli
from tests.tone_model import tone


@pytest.fixture(scope="module")
def stems_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("stems")
    rng = np.random.default_rng(0)
    for i in range(2):
        track = root / f"song{i}"
        track.mkdir()
        low, high = tone("low", 3.0, 22050, rng), tone("high", 3.0, 22050, rng)
        sf.write(track / "low.wav", low, 22050)
        sf.write(track / "high.flac", high, 22050)
        sf.write(track / "guitar.wav", 0.01 * rng.standard_normal(len(low)).astype(np.float32), 22050)  # unknown class
    silent = root / "song_silent"
    silent.mkdir()
    sf.write(silent / "low.wav", tone("low", 3.0, 22050, rng), 22050)
    sf.write(silent / "high.wav", tone("high", 3.0, 22050, rng), 22050)
    sf.write(silent / "hiss.wav", np.zeros(3 * 22050, np.float32), 22050)
    return root


def test_cli_eval_on_a_stems_folder(tone_model_dir, stems_dir, tmp_path):
    r = run_cli(
        "eval", "--model", tone_model_dir, "--data-dir", stems_dir, "--metrics", "sdr,sir,sar,si-sdr",
        "--out", tmp_path / "r.json", "--csv", tmp_path / "r.csv",
    )
    assert r.returncode == 0, r.stderr
    assert "oracle-ibm" in r.stdout and "SDRI" in r.stdout
    report = json.loads((tmp_path / "r.json").read_text())  # strict JSON: no NaN anywhere
    s = report["summary"]
    assert set(report["methods"]) == {"model", "mixture", "oracle-ibm", "oracle-irm"}
    assert s["oracle-ibm"]["overall"]["sdr"]["mean"] > s["mixture"]["overall"]["sdr"]["mean"] + 5
    assert s["model"]["overall"]["sdri"]["mean"] > 3
    assert s["model"]["overall"]["sdr"]["n"] == 3 * 2  # the silent hiss stem is left out of the means
    silent = [x for x in report["records"] if x["track"] == "song_silent" and x["class"] == "hiss"]
    assert {x["status"] for x in silent} == {"silent_reference"} and all(x["pes"] is not None for x in silent)
    assert not any(x["class"] == "guitar" for x in report["records"])
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert len(rows) == len(report["records"]) and {"track", "class", "method", "sdr", "sdri"} <= set(rows[0])
    # never overwrite results without asking
    again = run_cli("eval", "--model", tone_model_dir, "--data-dir", stems_dir, "--out", tmp_path / "r.json")
    assert again.returncode == 4 and "--overwrite" in again.stderr
    # --masks: the report records which way the masks were combined; independent masks separate too
    assert report["model"]["masks"] == "shared"
    ind = run_cli("eval", "--model", tone_model_dir, "--data-dir", stems_dir, "--masks", "independent",
                  "--baselines", "none", "--out", tmp_path / "ind.json")
    assert ind.returncode == 0, ind.stderr
    ind_report = json.loads((tmp_path / "ind.json").read_text())
    assert ind_report["model"]["masks"] == "independent"
    assert ind_report["summary"]["model"]["overall"]["sdri"]["mean"] > 3
    bad = run_cli("eval", "--model", tone_model_dir, "--data-dir", stems_dir, "--masks", "both")
    assert bad.returncode != 0 and "--masks must be one of" in bad.stderr and "Traceback" not in bad.stderr


def test_solos_mixtures_are_deterministic_and_scaled(tone_model_dir, tmp_path):
    rng = np.random.default_rng(1)
    for cls in ("low", "high", "hiss"):
        (tmp_path / cls).mkdir()
        for i in range(5):
            sf.write(tmp_path / cls / f"{i}.wav", tone(cls, 2.0, 11025, rng), 11025)
    sep = Separator(tone_model_dir, device="cpu")
    a = list(ev.solos_examples(tmp_path, sep.classes, sep.meta.audio, num_sources=3, segments=3, seed=4, split="train"))
    b = list(ev.solos_examples(tmp_path, sep.classes, sep.meta.audio, num_sources=3, segments=3, seed=4, split="train"))
    assert all(np.array_equal(x.references, y.references) and x.classes == y.classes for x, y in zip(a, b))
    assert a[0].references.shape == (3, sep.meta.audio.segment_samples)
    assert np.allclose(a[0].mixture, a[0].references.sum(0))
    report = ev.evaluate(sep, iter(a), metrics=("sdr", "si-sdr"))
    assert report.summary()["model"]["overall"]["sdri"]["mean"] > 0
    r = run_cli("eval", "--model", tone_model_dir, "--data-dir", tmp_path, "--num-sources", "2", "--segments", "2",
                "--split", "train", "--metrics", "sdr")
    assert r.returncode == 0, r.stderr and "solos" in r.stdout


def test_bad_inputs(tone_model_dir, tmp_path):
    track = tmp_path / "t"
    track.mkdir()
    sf.write(track / "low.wav", np.ones(11025, np.float32) * 0.1, 11025)
    sf.write(track / "high.wav", np.ones(5000, np.float32) * 0.1, 11025)
    sep = Separator(tone_model_dir, device="cpu")
    with pytest.raises(InputAudioError, match="different lengths"):
        list(ev.stems_examples(tmp_path, sep.classes, sep.meta.audio))
    with pytest.raises(UsageError, match="Unknown metric"):
        ev.evaluate(sep, iter([]), metrics=("pesq",))
    r = run_cli("eval", "--model", tone_model_dir, "--data-dir", tmp_path / "none")
    assert r.returncode == 2 and "not a folder" in r.stderr


def test_cli_eval_sources_and_no_baselines(tone_model_dir, stems_dir, tmp_path):
    r = run_cli("eval", "--model", tone_model_dir, "--data-dir", stems_dir, "--sources", "high",
                "--baselines", "none", "--metrics", "sdr", "--out", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["methods"] == ["model"]
    assert {x["class"] for x in report["records"]} == {"high"}
    assert report["summary"]["model"]["overall"]["sdri"]["n"] == 3  # SDRi still measured against the mixture


def test_cli_eval_on_a_music_corpus_takes_the_tracks_of_a_split_and_a_size(tone_model_dir, tmp_path):
    from sgnsep.datasets import MUSIC_CORPUS_FORMAT

    root = tmp_path / "corpus"
    rng = np.random.default_rng(3)
    layout = {"t0": ("test", ["low", "high"]), "t1": ("test", ["low", "high", "hiss"]), "t2": ("val", ["low", "high"]),
              "t3": ("train", ["low", "high"]), "t4": ("test", ["low", "guitar"])}
    tracks = []
    for name, (split, classes) in layout.items():
        (root / name).mkdir(parents=True)
        for c in classes:
            sf.write(root / name / f"{c}.wav", tone(c if c != "guitar" else "high", 2.0, 11025, rng), 11025)
        tracks.append({"track_id": name, "split": split,
                       "stems": {c: {"path": f"{name}/{c}.wav", "register": 60.0} for c in classes}})
    (root / "metadata.json").write_text(json.dumps({"format": MUSIC_CORPUS_FORMAT, "tracks": tracks}))

    def tracks_scored(*args):
        r = run_cli("eval", "--model", tone_model_dir, "--data-dir", root, "--baselines", "none", "--out",
                    tmp_path / "r.json", "--overwrite", *args)
        assert r.returncode == 0, r.stderr
        report = json.loads((tmp_path / "r.json").read_text())
        return sorted({x["track"] for x in report["records"]}), report["data"]

    assert tracks_scored() == (["t0", "t1", "t4"], {**tracks_scored()[1], "split": "test"})
    assert tracks_scored("--split", "val")[0] == ["t2"]
    two, info = tracks_scored("--num-sources", "2")  # t4's guitar is not evaluated: it is not a 2-part track
    assert two == ["t0"] and info["num_sources"] == 2 and info["split"] == "test"
    assert tracks_scored("--num-sources", "3")[0] == ["t1"]
    # A folder without a corpus manifest has no splits: every track, whatever --split says.
    (root / "metadata.json").unlink()
    assert tracks_scored("--split", "val")[0] == ["t0", "t1", "t2", "t3", "t4"]
    bad = run_cli("eval", "--model", tone_model_dir, "--data-dir", root, "--split", "dev")
    assert bad.returncode == 2 and "Unknown split" in bad.stderr and "Traceback" not in bad.stderr


def test_plan_evaluation_picks_the_layout_the_classes_and_the_mixtures(tone_model_dir, stems_dir, tmp_path):
    from sgnsep.evaluation.plan import plan_evaluation

    sep = Separator(tone_model_dir, device="cpu")
    plan = plan_evaluation([sep], stems_dir)  # no subfolder is named after a class: stems
    assert plan.dataset == "stems" and plan.total == 3 and plan.classes == sep.classes and plan.left_out == []
    assert plan.data_info == {"dir": str(stems_dir), "dataset": "stems", "sample_rate": sep.sample_rate}
    assert {e.track for e in plan.examples} == {"song0", "song1", "song_silent"}
    rng = np.random.default_rng(2)
    for cls in ("low", "high"):
        (tmp_path / cls).mkdir()
        for i in range(4):
            sf.write(tmp_path / cls / f"{i}.wav", tone(cls, 2.0, 11025, rng), 11025)
    plan = plan_evaluation([sep], tmp_path, segments=3, seed=5, split="train", sources="low,high")
    assert plan.dataset == "solos" and plan.total == 3 and plan.data_info["num_sources"] == 2
    examples = list(plan.examples)
    assert len(examples) == 3 and all(sorted(e.classes) == ["high", "low"] for e in examples)
    with pytest.raises(UsageError, match="data_dir"):
        plan_evaluation([sep], tmp_path / "missing")
    with pytest.raises(UsageError, match="dataset"):
        plan_evaluation([sep], tmp_path, dataset="musdb")
