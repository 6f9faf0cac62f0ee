"""Separate the example chorale with the Python API and report how close the stems are to the references.

    python examples/separate_api.py
"""

from pathlib import Path

import numpy as np
import soundfile as sf

from sgnsep import Separator

HERE = Path(__file__).parent


def main() -> None:
    sep = Separator()  # the packaged default model, on the best available device
    print(f"model {sep.name}: {len(sep.classes)} classes: {', '.join(sep.classes)}")
    audio, rate = sf.read(HERE / "bach_violin_cello.wav", always_2d=True, dtype="float32")
    stems = sep.separate(audio.T, rate, ["violin", "cello"], residual=True)
    for name in ("violin", "cello"):
        ref, _ = sf.read(HERE / "stems" / "bach_violin_cello" / f"{name}.flac", always_2d=True, dtype="float32")
        est = stems[name].T
        snr = 10 * np.log10(np.sum(ref**2) / np.sum((ref - est) ** 2))
        mix = 10 * np.log10(np.sum(ref**2) / np.sum((ref - audio) ** 2))
        print(f"{name}: SNR {snr:.1f} dB against the reference stem (the mixture scores {mix:.1f} dB)")
    total = stems["violin"] + stems["cello"] + stems["residual"]
    print(f"stems + residual reproduce the input to {np.abs(total - audio.T).max():.1e}")


if __name__ == "__main__":
    main()
