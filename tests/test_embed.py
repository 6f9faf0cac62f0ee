"""`sgnsep embed`: class embeddings of a folder of clips as a picture and CSV, on real files through the CLI."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from sgnsep.plots import plotting
from sgnsep.analysis.embedding import nearest_centroid_accuracy, project
from tests.test_hardening import assert_clean_failure, cli_env, files_under, run_cli_many
from tests.test_plots import png_size
from tests.tone_model import CLASSES, tone

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def solos(tmp_path_factory):
    """DIR/<class>/*.wav: 4 clips of 2 s per tone class, at assorted rates, and a folder the model lacks."""
    root = tmp_path_factory.mktemp("solos")
    rng = np.random.default_rng(3)
    for name in CLASSES:
        (root / name).mkdir()
        for i, sr in enumerate((11025, 22050, 44100, 16000)):
            sf.write(root / name / f"{name}{i}.wav", tone(name, 2.0, sr, rng) / 2, sr)
    (root / "violin").mkdir()
    sf.write(root / "violin" / "v.wav", np.zeros(11025, np.float32), 11025)
    return root


def read_points(path):
    rows = list(csv.DictReader(path.open()))
    return rows, np.array([[float(r["x"]), float(r["y"])] for r in rows]), [r["class"] for r in rows]


def test_embed_pca_picture_csv_and_separation_table(presence_model_dir, solos, tmp_path):
    (r,) = run_cli_many([
        ["embed", solos, "-m", presence_model_dir, "--out", tmp_path / "emb.png", "--csv", tmp_path / "emb.csv"],
    ], tmp_path)
    assert r.returncode == 0, r.stderr
    assert png_size(tmp_path / "emb.png") == (plotting.FIGURE_WIDTH_PX, plotting.EMBEDDING_FIGURE_HEIGHT)
    rows, points, labels = read_points(tmp_path / "emb.csv")
    assert len(rows) == 12 and sorted(set(labels)) == sorted(CLASSES)
    assert all(r["path"].endswith(".wav") and f"/{r['class']}/" in r["path"] for r in rows)
    assert np.isfinite(points).all()
    # Each class is its own group, even in 2-D: every clip is nearest to its own class's centroid.
    assert nearest_centroid_accuracy(points, labels) == {c: 1.0 for c in CLASSES}
    assert "skipped 1 folder(s)/stem(s) of classes the model does not know: violin" in r.stderr
    for name in CLASSES:
        assert name in r.stdout
    assert "Mean nearest-centroid accuracy 100%" in r.stdout


def test_embed_stems_layout_and_errors(presence_model_dir, solos, tmp_path):
    stems = tmp_path / "stems"
    rng = np.random.default_rng(5)
    for i, pair in enumerate((("low", "high"), ("high", "hiss"), ("low", "hiss"))):
        (stems / f"track{i}").mkdir(parents=True)
        for name in pair:
            sf.write(stems / f"track{i}" / f"{name}.flac", tone(name, 2.0, 22050, rng) / 2, 22050)
        sf.write(stems / f"track{i}" / "mixture.flac", np.zeros(22050, np.float32), 22050)
    (tmp_path / "taken.png").write_bytes(b"keep")
    runs = run_cli_many([
        ["embed", stems, "-m", presence_model_dir, "--out", tmp_path / "s.png", "--csv", tmp_path / "s.csv",
         "--windows-per-clip", "2"],
        ["embed", solos, "-m", presence_model_dir, "--out", tmp_path / "taken.png"],
        ["embed", tmp_path / "nowhere", "-m", presence_model_dir, "--out", tmp_path / "n.png"],
        ["embed", solos / "violin", "-m", presence_model_dir, "--out", tmp_path / "v.png"],
        ["embed", solos, "-m", presence_model_dir, "--out", tmp_path / "m.png", "--method", "umap"],
        ["embed", solos, "-m", presence_model_dir, "--out", tmp_path / "x.jpg"],
    ], tmp_path)
    assert runs[0].returncode == 0, runs[0].stderr
    _, _, labels = read_points(tmp_path / "s.csv")
    assert sorted(labels) == ["high", "high", "hiss", "hiss", "low", "low"]  # mixture.flac is no class
    assert "(stems layout)" in " ".join(runs[0].stdout.split())
    assert_clean_failure(runs[1], 4, "taken.png already exists", "--overwrite")
    assert (tmp_path / "taken.png").read_bytes() == b"keep"
    assert_clean_failure(runs[2], 2, "nowhere is not a folder")
    assert_clean_failure(runs[3], 2, "no clips of the model's classes", "low, high, hiss")
    assert_clean_failure(runs[4], 2, "Unknown --method 'umap'")
    assert_clean_failure(runs[5], 2, "name it *.png")
    assert not any(p.suffix == ".png" for p in files_under(tmp_path) if p.name not in ("s.png", "taken.png"))


def test_embed_tsne(presence_model_dir, solos, tmp_path):
    pytest.importorskip("sklearn")
    (r,) = run_cli_many([
        ["embed", solos, "-m", presence_model_dir, "--method", "tsne", "--out", tmp_path / "t.png", "--csv",
         tmp_path / "t.csv"],
    ], tmp_path)
    assert r.returncode == 0, r.stderr
    assert png_size(tmp_path / "t.png") == (plotting.FIGURE_WIDTH_PX, plotting.EMBEDDING_FIGURE_HEIGHT)
    _, points, labels = read_points(tmp_path / "t.csv")
    assert len(labels) == 12 and np.isfinite(points).all()
    assert nearest_centroid_accuracy(points, labels) == {c: 1.0 for c in CLASSES}


def test_tsne_without_scikit_learn_says_how_to_install_it(presence_model_dir, solos, tmp_path):
    blocker = tmp_path / "no-sklearn"
    (blocker / "sklearn").mkdir(parents=True)
    (blocker / "sklearn" / "__init__.py").write_text("raise ImportError('scikit-learn is blocked for this test')\n")
    env = cli_env()
    env["PYTHONPATH"] = f"{blocker}:{env['PYTHONPATH']}"
    args = ["embed", solos, "-m", presence_model_dir, "--method", "tsne", "--out", tmp_path / "t.png"]
    r = subprocess.run([sys.executable, "-m", "sgnsep", *map(str, args)], capture_output=True, text=True, env=env,
                       timeout=300)
    r.args = args
    assert_clean_failure(r, 2, "needs scikit-learn", "pip install 'sgnsep[embed]'", "--method pca")
    assert not (tmp_path / "t.png").exists()


def test_pca_projection_keeps_the_largest_spread_and_a_stable_sign():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 8)) * np.array([10, 3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    points = project(x, "pca")
    assert points.shape == (50, 2)
    assert points[:, 0].var() == pytest.approx(np.cov(x[:, 0], bias=True), rel=0.05)
    assert np.allclose(project(x, "pca"), points) and np.allclose(np.abs(project(-x, "pca")), np.abs(points))
