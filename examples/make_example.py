"""Render examples/bach_violin_cello.wav: a Bach chorale with its soprano on violin and bass on cello.

Allowed material only (see README): the chorale comes from music21's corpus and lies in the *test* split
of the training corpus (`sgnsep data synth` splits by chorale), the instruments from FluidR3_GM.
The reference stems go to examples/stems/bach_violin_cello/{violin,cello}.wav (panned like the mixture,
so they sum to it exactly) for `sgnsep eval --data-dir examples/stems`.

    python examples/make_example.py        # needs: pip install --no-deps tinysoundfont; pip install 'sgnsep[synth]'
"""

from pathlib import Path

import numpy as np
import soundfile as sf

from sgnsep import synth

HERE = Path(__file__).parent
RATE = 44100
SECONDS = 12.0
CHORALE = "bach/bwv254"  # in the corpus's test split (split_scores["test"] of data/gm17/metadata.json)
SECONDS_PER_QUARTER = 0.75  # 80 beats per minute


def voice_notes(voices: dict, voice: str, transpose: int) -> list:
    notes = []
    for pitch, onset, dur, _fermata in voices[voice]:
        start = onset * SECONDS_PER_QUARTER
        if start < SECONDS:
            notes.append(synth.Note(int(pitch) + transpose, start, dur * SECONDS_PER_QUARTER, 90))
    return notes


def main() -> None:
    voices = synth.load_chorales([CHORALE])[CHORALE]
    font = synth.find_soundfonts()["fluidr3_gm"]
    stems = {}
    for cls, voice, transpose, pan in (("violin", "soprano", 12, -0.3), ("cello", "bass", 0, 0.3)):
        mono = synth.render_notes(font, synth.INSTRUMENTS[cls].program, voice_notes(voices, voice, transpose), RATE, seconds=SECONDS)
        mono, _ = synth.normalise_loudness(mono, RATE, target_db=-26.0)
        gains = np.array([np.sqrt(0.5 - pan / 2), np.sqrt(0.5 + pan / 2)])[:, None]
        stems[cls] = (gains * mono[None]).astype(np.float32)
    mixture = stems["violin"] + stems["cello"]
    out = HERE / "stems" / "bach_violin_cello"
    out.mkdir(parents=True, exist_ok=True)
    for cls, data in stems.items():
        sf.write(out / f"{cls}.flac", data.T, RATE, subtype="PCM_24")
    sf.write(HERE / "bach_violin_cello.wav", mixture.T, RATE, subtype="PCM_16")
    print(f"wrote {HERE / 'bach_violin_cello.wav'} ({SECONDS} s, {RATE} Hz, stereo) and stems in {out}")


if __name__ == "__main__":
    main()
