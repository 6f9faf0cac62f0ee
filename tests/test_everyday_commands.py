"""The three lines users type, exactly as written, on a fresh install (a temporary home folder)."""

from __future__ import annotations

import shutil
from pathlib import Path

import soundfile as sf

from tests.test_separate import run_cli

ROOT = Path(__file__).resolve().parents[1]


def fresh_env(home: Path) -> dict:
    return {"HOME": str(home), "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9",
            }


def test_separate_song_wav_sources_violin_cello(tmp_path):
    shutil.copy(ROOT / "examples" / "bach_violin_cello.wav", tmp_path / "song.wav")
    r = run_cli("separate", "song.wav", "--sources", "violin,cello", cwd=tmp_path, env=fresh_env(tmp_path))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "separated" / "sgn-gm-small" / "song"
    assert sorted(p.name for p in out.iterdir()) == ["cello.wav", "violin.wav"]
    assert sf.info(out / "violin.wav").samplerate == 44100 and sf.info(out / "violin.wav").channels == 2


def test_eval_metrics_sdr_sir_sar(tmp_path):
    r = run_cli("eval", "--metrics", "sdr,sir,sar", cwd=tmp_path, env=fresh_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "chorales-2src" in r.stderr and "--data-dir" in r.stderr  # says which set and how to change it
    for word in ("model", "mixture", "oracle-ibm", "SDRI", "violin"):
        assert word in r.stdout


def test_train_dataset_music_without_the_data_explains(tmp_path):
    r = run_cli("train", "--dataset", "music", cwd=tmp_path, env=fresh_env(tmp_path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert str(tmp_path / ".cache" / "sgnsep" / "data" / "music") in r.stderr
    assert "MUSIC_solo_videos.json" in r.stderr and "--dataset solos" in r.stderr
