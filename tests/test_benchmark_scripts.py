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
