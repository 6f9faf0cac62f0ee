"""The soundfonts of the music corpus and every preset of each class that they hold.

Soundfonts
    Those of :data:`sgnsep.synth.SOUNDFONT_FILES` plus MuseScore General HQ (Debian
    ``musescore-general-soundfont``, ``MuseScore_General_Full.sf3``), which the solo corpus does not draw from
    (adding it there would change what `data synth` renders). Families as in sgnsep.synth: FluidR3 GM,
    FluidR3Mono and both MuseScore Generals share their samples (``"fluidr3"``); TimGM6mb is another
    (``"timgm6mb"``). csound's sf_GMbank.sf2 is refused (:func:`sgnsep.synth.check_soundfont_allowed`).
    :func:`resolve_soundfonts` takes keys, paths and ``family:<name>`` (every installed soundfont of a family).

Presets
    General MIDI gives a class one program; the Debian soundfonts hold more in other banks: FluidR3's
    Slow Violin (8:40), MuseScore's expressive variants (bank 17/18) and its string sections (banks 20..51:
    violins, second violins, violas, celli and basses, slow, fast, tremolo and pizzicato). :data:`CLASS_PRESETS`
    lists, per class, the presets that are that instrument (a violin section and a fiddle are violins; an
    English horn is not an oboe), with the sounding range of the variant where it differs (the four
    saxophones) and whether it is plucked (pizzicato). A preset absent from a soundfont is skipped;
    a present one must pass :func:`sgnsep.synth.probe_preset` over its range.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from sgnsep.synth import instruments, render, soundfonts
from sgnsep.core.errors import UsageError

__all__ = ["SOUNDFONT_FILES", "FAMILIES", "Preset", "CLASS_PRESETS", "find_soundfonts", "resolve_soundfonts",
           "soundfont_family", "usable_presets"]

SOUNDFONT_FILES: dict[str, dict] = {
    **{k: v for k, v in soundfonts.SOUNDFONT_FILES.items() if k != "timgm6mb_pretty_midi"},
    "musescore_general": {
        "file": "MuseScore_General_Full.sf3",
        "family": "fluidr3",
        "package": "Debian musescore-general-soundfont",
        "paths": ["/usr/share/sounds/sf3/MuseScore_General_Full.sf3"],
    },
    "timgm6mb_pretty_midi": soundfonts.SOUNDFONT_FILES["timgm6mb_pretty_midi"],
}
FAMILIES = tuple(sorted({v["family"] for v in SOUNDFONT_FILES.values()}))
_INSTALL_HINT = soundfonts.INSTALL_HINT.replace("musescore-general-soundfont-small", "musescore-general-soundfont-small "
                                            "musescore-general-soundfont")


def find_soundfonts() -> dict[str, Path]:
    """The allowed soundfonts installed here, in :data:`SOUNDFONT_FILES` order (never sf_GMbank)."""
    found = soundfonts.find_soundfonts()
    out: dict[str, Path] = {}
    for key, info in SOUNDFONT_FILES.items():
        if key in found:
            out[key] = found[key]
        elif key not in soundfonts.SOUNDFONT_FILES:
            for path in map(Path, info["paths"]):
                if path.is_file():
                    try:
                        out[key] = soundfonts.check_soundfont_allowed(path)
                    except UsageError:
                        continue
                    break
    return out


def soundfont_family(key: str, path: Path) -> str:
    if key in SOUNDFONT_FILES:
        return SOUNDFONT_FILES[key]["family"]
    return soundfonts.soundfont_family(key, path)


def resolve_soundfonts(items: list[str] | None) -> dict[str, Path]:
    """``{key: path}`` of the soundfonts named (all found when None; pretty_midi's TimGM6mb only where Debian's
    is missing, as it holds the same presets). Items: keys, ``family:<name>``, or paths to .sf2/.sf3 files."""
    found = find_soundfonts()
    if items is None:
        if not found:
            raise UsageError("No allowed soundfont was found on this machine.", hint=_INSTALL_HINT)
        if "timgm6mb" in found:
            found.pop("timgm6mb_pretty_midi", None)
        return found
    chosen: dict[str, Path] = {}
    for item in items:
        item = str(item).strip()
        if item.startswith("family:"):
            fam = item[len("family:") :]
            if fam not in FAMILIES:
                raise UsageError(f"Unknown soundfont family '{fam}'; known: {', '.join(FAMILIES)}.")
            members = {k: p for k, p in found.items() if SOUNDFONT_FILES[k]["family"] == fam}
            if "timgm6mb" in members:
                members.pop("timgm6mb_pretty_midi", None)
            if not members:
                raise UsageError(f"No soundfont of the family '{fam}' is installed.", hint=_INSTALL_HINT)
            chosen.update(members)
        elif item in SOUNDFONT_FILES:
            if item not in found:
                raise UsageError(f"Soundfont '{item}' ({SOUNDFONT_FILES[item]['package']}) is not installed; "
                                 f"found: {', '.join(found) or 'none'}.", hint=_INSTALL_HINT)
            chosen[item] = found[item]
        else:
            path = soundfonts.check_soundfont_allowed(item)
            if not path.is_file() or path.suffix.lower() not in (".sf2", ".sf3"):
                raise UsageError(
                    f"Soundfont '{item}' is neither a known key ({', '.join(SOUNDFONT_FILES)}), nor family:<name> "
                    f"({', '.join(FAMILIES)}), nor an .sf2/.sf3 file.", hint=_INSTALL_HINT)
            soundfonts.add_soundfont_file(chosen, path)
    if not chosen:
        raise UsageError("No soundfont was given.", hint=_INSTALL_HINT)
    return chosen


@dataclass(frozen=True)
class Preset:
    """One preset that plays a class: ``bank:program``, its sounding range and whether it sustains."""

    cls: str
    bank: int
    program: int
    low: int
    high: int
    sustained: bool

    def instrument(self) -> instruments.Instrument:
        base = instruments.INSTRUMENTS[self.cls]
        return replace(base, program=self.program, low=self.low, high=self.high, sustained=self.sustained)


def _p(cls: str, bank: int, program: int, low: int | None = None, high: int | None = None,
       sustained: bool | None = None) -> Preset:
    base = instruments.INSTRUMENTS[cls]
    return Preset(cls, bank, program, base.low if low is None else low, base.high if high is None else high,
                  base.sustained if sustained is None else sustained)


def _section(cls: str, banks: tuple[int, int]) -> list[Preset]:
    """MuseScore's string sections: bank n slow/fast/tremolo/pizzicato, bank n+1 the expressive ones."""
    plain, expr = banks
    return [_p(cls, plain, 49), _p(cls, plain, 48), _p(cls, plain, 44), _p(cls, plain, 45, sustained=False),
            _p(cls, expr, 49), _p(cls, expr, 48), _p(cls, expr, 44)]


CLASS_PRESETS: dict[str, list[Preset]] = {
    "violin": [_p("violin", 0, 40), _p("violin", 8, 40), _p("violin", 17, 40), _p("violin", 18, 40),
               _p("violin", 0, 110), _p("violin", 17, 110), *_section("violin", (20, 21)), *_section("violin", (25, 26))],
    "viola": [_p("viola", 0, 41), _p("viola", 17, 41), *_section("viola", (30, 31))],
    "cello": [_p("cello", 0, 42), _p("cello", 17, 42), *_section("cello", (40, 41))],
    "double_bass": [_p("double_bass", 0, 43), _p("double_bass", 17, 43), *_section("double_bass", (50, 51))],
    "flute": [_p("flute", 0, 73), _p("flute", 17, 73)],
    "oboe": [_p("oboe", 0, 68), _p("oboe", 17, 68)],
    "clarinet": [_p("clarinet", 0, 71), _p("clarinet", 17, 71)],
    "bassoon": [_p("bassoon", 0, 70), _p("bassoon", 17, 70)],
    # Soprano, alto, tenor and baritone saxophones (sounding ranges Ab3..E6, Db3..Ab5, Ab2..E5, Db2..Ab4).
    "saxophone": [_p("saxophone", b, prog, lo, hi) for b in (0, 17)
                  for prog, lo, hi in ((64, 56, 88), (65, 49, 80), (66, 44, 76), (67, 37, 68))],
    "trumpet": [_p("trumpet", 0, 56), _p("trumpet", 17, 56), _p("trumpet", 0, 59), _p("trumpet", 17, 59)],
    "horn": [_p("horn", 0, 60), _p("horn", 17, 60)],
    "trombone": [_p("trombone", 0, 57), _p("trombone", 17, 57)],
    "tuba": [_p("tuba", 0, 58), _p("tuba", 17, 58)],
    "acoustic_guitar": [_p("acoustic_guitar", 0, 24), _p("acoustic_guitar", 0, 25), _p("acoustic_guitar", 8, 25)],
    "accordion": [_p("accordion", 0, 21), _p("accordion", 8, 21), _p("accordion", 17, 21), _p("accordion", 18, 21)],
    "xylophone": [_p("xylophone", 0, 13)],
    "piano": [_p("piano", 0, 0), _p("piano", 0, 1), _p("piano", 8, 0)],
}


def _has_preset(path: Path, bank: int, program: int) -> bool:
    from tinysoundfont import _tinysoundfont as tsf

    key = str(path)
    if key not in render.LOADED_SOUNDFONTS:
        render.LOADED_SOUNDFONTS[key] = tsf.SoundFont(key)
    return render.LOADED_SOUNDFONTS[key].get_preset_index(int(bank), int(program)) >= 0


def usable_presets(fonts: dict[str, Path], classes: list[str], sample_rate: int) -> tuple[dict, list[dict]]:
    """``{soundfont: {class: [Preset, ...]}}`` of the presets present and passing the probe, and the skipped
    ones with their reasons (presets a soundfont does not have at all are not listed)."""
    usable: dict[str, dict[str, list[Preset]]] = {}
    skipped = []
    for key, path in fonts.items():
        usable[key] = {}
        for c in classes:
            ok = []
            for preset in CLASS_PRESETS[c]:
                if not _has_preset(path, preset.bank, preset.program):
                    continue
                why = render.probe_preset(path, preset.instrument(), sample_rate, bank=preset.bank)
                if why is None:
                    ok.append(preset)
                else:
                    skipped.append({"soundfont": key, "class": c, "bank": preset.bank, "program": preset.program,
                                    "reason": why})
            if ok:
                usable[key][c] = ok
    return usable, skipped


def preset_name(path: Path, preset: Preset) -> str:
    _has_preset(path, preset.bank, preset.program)
    sf = render.LOADED_SOUNDFONTS[str(path)]
    return str(sf.get_preset_name(sf.get_preset_index(preset.bank, preset.program)))


def describe(fonts: dict[str, Path]) -> dict:
    return {k: {"file": p.name, "path": os.fspath(p), "family": soundfont_family(k, p)} for k, p in fonts.items()}
