"""Regenerate the gallery (docs/gallery.md, docs/gallery/*.png) with the packaged default model, offline.

    python examples/make_gallery.py            # about two minutes on a laptop CPU; needs sgnsep[plot]

Every picture is made by the CLI exactly as a user would make it, from files in this repository:

- separate.png: `sgnsep separate examples/bach_violin_cello.wav --sources violin,cello --plot`
- detect.png:   `sgnsep detect examples/bach_violin_cello.wav --plot ...`
- eval.png:     `sgnsep eval --plot ...` on the test set that ships with sgnsep (chorales-2src)
- embed.png:    `sgnsep embed sgnsep/data/testset/chorales-3src` (stems layout: 60 solo stems, 20 tracks)

The commands run in a temporary folder; only the PNGs are copied into docs/gallery/ (replacing the old ones).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GALLERY = ROOT / "docs" / "gallery"
EXAMPLE = ROOT / "examples" / "bach_violin_cello.wav"
TESTSETS = ROOT / "sgnsep" / "data" / "testset"
MAX_BYTES = 200_000  # the gallery's pictures stay small


def sgnsep(*args, cwd: Path) -> None:
    print("$ sgnsep", " ".join(str(a) for a in args), flush=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-m", "sgnsep", *map(str, args)], cwd=cwd, env=env, check=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        made = {}
        sgnsep("separate", EXAMPLE, "--sources", "violin,cello", "--plot", "--out", work / "separated", cwd=work)
        made["separate.png"] = work / "separated" / "sgn-gm-small" / EXAMPLE.stem / "separation.png"
        sgnsep("detect", EXAMPLE, "--plot", work / "detect.png", cwd=work)
        made["detect.png"] = work / "detect.png"
        sgnsep("eval", "--data-dir", TESTSETS / "chorales-2src", "--metrics", "sdr,si-sdr", "--plot", work / "eval.png",
               cwd=work)
        made["eval.png"] = work / "eval.png"
        sgnsep("embed", TESTSETS / "chorales-3src", "--out", work / "embed.png", cwd=work)
        made["embed.png"] = work / "embed.png"

        GALLERY.mkdir(parents=True, exist_ok=True)
        for name, path in made.items():
            size = path.stat().st_size
            if size > MAX_BYTES:
                raise SystemExit(f"{name} is {size} bytes, over the gallery's {MAX_BYTES}; make the figure smaller.")
            shutil.copyfile(path, GALLERY / name)
            print(f"wrote {GALLERY / name} ({size // 1000} KB)")


if __name__ == "__main__":
    main()
