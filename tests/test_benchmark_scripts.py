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
