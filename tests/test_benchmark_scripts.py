"""The benchmark scripts that other numbers rest on run and report what they claim to."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_compare_checkouts_times_both_checkouts_case_by_case(tmp_path):
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare_checkouts.py"), str(ROOT), str(ROOT), "--rounds", "1",
         "--repeats", "1"], capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, r.stderr
    row = r"^\| (network|stream|file), (\d) classes \| ([\d.]+) s \| ([\d.]+) s \| ([\d.]+) \|"
    rows = re.findall(row, r.stdout, re.M)
    assert [(w, int(n)) for w, n, *_ in rows] == [(w, n) for w in ("network", "stream", "file") for n in (2, 8)]
    for _, _, a, b, ratio in rows:
        assert float(a) > 0 and float(b) > 0
        assert abs(float(ratio) - float(b) / float(a)) < 0.011  # the printed ratio is B over A


def test_compare_checkouts_refuses_what_is_not_a_checkout_and_a_broken_one(tmp_path):
    script = str(ROOT / "benchmarks" / "compare_checkouts.py")
    r = subprocess.run([sys.executable, script, str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 2 and "is not a checkout of sgnsep" in r.stderr
    broken = tmp_path / "broken"
    (broken / "sgnsep").mkdir(parents=True)
    (broken / "sgnsep" / "__init__.py").write_text("raise ImportError('this checkout does not import')\n")
    r = subprocess.run([sys.executable, script, str(broken), str(ROOT), "--rounds", "1", "--repeats", "1"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and str(broken) in r.stderr and "does not import" in r.stderr


def test_paired_sdr_compares_models_of_separate_evaluations_on_their_common_sources(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("track,class,method,status,sdr\nt0,violin,sgn,ok,1.0\nt1,violin,sgn,ok,3.0\nt2,cello,sgn,ok,0.0\n")
    # b: another evaluation, one source more (not paired), one too short to score (skipped)
    b.write_text("track,class,method,status,sdr\nt0,violin,unet,ok,2.0\nt1,violin,unet,ok,3.5\nt2,cello,unet,ok,-1.0\n"
                 "t3,cello,unet,ok,9.0\nt4,flute,unet,too-short,\n")
    script = str(ROOT / "benchmarks" / "paired_sdr.py")
    r = subprocess.run([sys.executable, script, f"sgn={a}", f"u={b}:unet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # differences +1.0, +0.5, -1.0: mean +0.17, sd 1.04, se 0.60, higher on 2 of 3
    assert "| u | +0.17 +- 0.60 dB, higher on 67% of 3 |" in r.stdout
    bad = subprocess.run([sys.executable, script, f"sgn={a}", f"u={b}"], capture_output=True, text=True)
    assert bad.returncode == 2 and "has no rows of method 'u'" in bad.stderr and "Traceback" not in bad.stderr


def _fake_checkout(folder: Path, printed: str, wav_value: float) -> Path:
    """A stand-in for a checkout: `python -m sgnsep models --json` prints ``printed`` (with the checkout's path
    and a time in it) and `separate ... -o DIR` writes one float WAV."""
    (folder / "sgnsep").mkdir(parents=True)
    (folder / "sgnsep" / "__init__.py").write_text("")
    (folder / "sgnsep" / "__main__.py").write_text(
        "import json, sys, time\nfrom pathlib import Path\nimport numpy as np, soundfile as sf\n"
        "if sys.argv[1] == 'models':\n"
        f"    print(json.dumps({{'path': str(Path(__file__).parent), 'seconds': time.time(), 'value': {printed!r}}}))\n"
        "else:\n"
        "    out = Path(sys.argv[sys.argv.index('-o') + 1]); out.mkdir(parents=True)\n"
        f"    sf.write(out / 'x.wav', np.full(100, {wav_value}, np.float32), 8000, subtype='FLOAT')\n"
    )
    return folder


def test_same_outputs_finds_what_two_checkouts_do_differently(tmp_path):
    script = str(ROOT / "benchmarks" / "same_outputs.py")
    a = _fake_checkout(tmp_path / "a", "one", 0.25)
    b = _fake_checkout(tmp_path / "b", "one", 0.25)
    c = _fake_checkout(tmp_path / "c", "two", 0.5)

    def run(x, y):
        return subprocess.run([sys.executable, script, str(x), str(y), "--cases", "models,separate-independent"],
                              capture_output=True, text=True, timeout=600)

    same = run(a, b)  # paths and times differ, outputs do not
    assert same.returncode == 0, same.stderr
    assert "| models | 0 + stdout | same |" in same.stdout and "| separate-independent | 1 + stdout | same |" in same.stdout
    other = run(a, c)
    assert other.returncode == 1
    assert "| models | 0 + stdout | differ: <stdout> |" in other.stdout
    assert "| separate-independent | 1 + stdout | differ: stems/x.wav |" in other.stdout
    missing = subprocess.run([sys.executable, script, str(tmp_path / "a"), str(tmp_path), "--cases", "models"],
                             capture_output=True, text=True, timeout=600)
    assert missing.returncode != 0 and "imports sgnsep from" in missing.stderr


def test_grouping_diagnostics_probes_the_forward_pass_of_the_default_model():
    """The probe must see the embeddings the masks are made from: a probe that misses the forward pass reports
    no grouping mass and a loss of exactly 0 dB (as it did once, silently)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import grouping_diagnostics
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    row = grouping_diagnostics.measure("sgn-gm-small", "chorales-2src")
    assert row["sources"] == 40
    assert row["mass_uniform"] < row["mass_present"] < 1  # 2 of 17 classes: uniform would be 2/17
    assert row["sdr_own"] != row["sdr_class_mean"]
