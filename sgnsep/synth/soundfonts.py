"""Which soundfonts are used, and where they are found.

Only the soundfonts named in :data:`SOUNDFONT_FILES` are searched for (Debian packages and pretty_midi's
bundled TimGM6mb.sf2). FluidR3 GM, FluidR3Mono GM and MuseScore General share their samples (family
``"fluidr3"``); TimGM6mb is a different family: render a test corpus from one family and a training corpus
from the other to test timbre generalisation. ``sf_GMbank.sf2`` (csound) is reserved for independent
evaluation and is refused wherever it is named, even behind a symbolic link.
"""

from __future__ import annotations

import os
from pathlib import Path

from sgnsep.core.errors import UsageError


#: Allowed soundfonts: key -> (file name, family, where it comes from, candidate paths).
SOUNDFONT_FILES: dict[str, dict] = {
    "fluidr3_gm": {
        "file": "FluidR3_GM.sf2",
        "family": "fluidr3",
        "package": "Debian fluid-soundfont-gm",
        "paths": ["/usr/share/sounds/sf2/FluidR3_GM.sf2"],
    },
    "fluidr3mono_gm": {
        "file": "FluidR3Mono_GM.sf3",
        "family": "fluidr3",
        "package": "Debian fluidr3mono-gm-soundfont",
        "paths": [
            "/usr/share/sounds/sf3/FluidR3Mono_GM.sf3",
            "/usr/share/fluidr3mono-gm-soundfont/FluidR3Mono_GM.sf3",
        ],
    },
    "musescore_general_lite": {
        "file": "MuseScore_General_Lite.sf3",
        "family": "fluidr3",
        "package": "Debian musescore-general-soundfont-small",
        "paths": ["/usr/share/sounds/sf3/MuseScore_General_Lite.sf3"],
    },
    "timgm6mb": {
        "file": "TimGM6mb.sf2",
        "family": "timgm6mb",
        "package": "Debian timgm6mb-soundfont",
        "paths": ["/usr/share/sounds/sf2/TimGM6mb.sf2"],
    },
    "timgm6mb_pretty_midi": {
        "file": "TimGM6mb.sf2",
        "family": "timgm6mb",
        "package": "PyPI pretty_midi (bundled)",
        "paths": [],  # found next to pretty_midi's __init__.py
    },
}


INSTALL_HINT = (
    "Install one: `apt-get install -y fluid-soundfont-gm fluidr3mono-gm-soundfont "
    "musescore-general-soundfont-small timgm6mb-soundfont`, or `pip install pretty_midi` (bundles TimGM6mb.sf2)."
)


def check_soundfont_allowed(path: str | os.PathLike) -> Path:
    """Return ``path`` as a Path, or raise UsageError if it is (or links to) csound's reserved sf_GMbank."""
    p = Path(path)
    names = [p.name]
    try:
        names.append(p.resolve().name)
    except OSError:
        pass
    if any("sf_gmbank" in n.lower() for n in names):
        raise UsageError(
            f"Soundfont {p} is csound's sf_GMbank, which is reserved for independent evaluation.",
            hint="Use one of the allowed soundfonts (see sgnsep.synth.SOUNDFONT_FILES).",
        )
    return p


def _pretty_midi_soundfont() -> Path | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec("pretty_midi")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "TimGM6mb.sf2"
    return path if path.is_file() else None


def find_soundfonts() -> dict[str, Path]:
    """The allowed soundfonts present on this machine, as ``{key: path}`` in :data:`SOUNDFONT_FILES` order.

    Looks only at the Debian install paths and pretty_midi's bundled TimGM6mb.sf2; never returns sf_GMbank.
    """
    found: dict[str, Path] = {}
    for key, info in SOUNDFONT_FILES.items():
        candidates = [Path(p) for p in info["paths"]]
        if key == "timgm6mb_pretty_midi":
            pm = _pretty_midi_soundfont()
            candidates = [pm] if pm is not None else []
        for path in candidates:
            if path.is_file():
                try:
                    check_soundfont_allowed(path)
                except UsageError:
                    continue
                found[key] = path
                break
    return found


def resolve_soundfonts(soundfonts) -> dict[str, Path]:
    found = find_soundfonts()
    if soundfonts is None:
        if not found:
            raise UsageError("No allowed soundfont was found on this machine.", hint=INSTALL_HINT)
        if "timgm6mb" in found:  # pretty_midi's copy renders the same presets: do not count TimGM twice
            found.pop("timgm6mb_pretty_midi", None)
        return found
    if isinstance(soundfonts, (str, os.PathLike)):
        soundfonts = [soundfonts]
    chosen: dict[str, Path] = {}
    for item in soundfonts:
        if isinstance(item, str) and item in SOUNDFONT_FILES:
            if item not in found:
                raise UsageError(
                    f"Soundfont '{item}' ({SOUNDFONT_FILES[item]['package']}) is not installed; "
                    f"found: {sorted(found) or 'none'}.",
                    hint=INSTALL_HINT,
                )
            chosen[item] = found[item]
            continue
        path = check_soundfont_allowed(item)
        if not path.is_file():
            raise UsageError(
                f"Soundfont '{item}' is neither a known key ({', '.join(SOUNDFONT_FILES)}) nor an existing file.",
                hint=INSTALL_HINT,
            )
        add_soundfont_file(chosen, path)
    if not chosen:
        raise UsageError("No soundfont was given.", hint=INSTALL_HINT)
    return chosen


def add_soundfont_file(chosen: dict[str, Path], path: Path) -> None:
    """Add a soundfont given by path under a key made from its file name, distinct from those in ``chosen``."""
    key = path.stem.lower().replace("-", "_").replace(" ", "_")
    while key in chosen:
        key += "_"
    chosen[key] = path


def soundfont_family(key: str, path: Path) -> str:
    if key in SOUNDFONT_FILES:
        return SOUNDFONT_FILES[key]["family"]
    for info in SOUNDFONT_FILES.values():
        if info["file"].lower() == path.name.lower():
            return info["family"]
    return path.stem.lower()


#: Soundfonts :func:`render_chorale_stems` draws from by default (both families of the corpus).
STEMS_SOUNDFONTS = ("fluidr3_gm", "musescore_general_lite", "timgm6mb")


def stems_soundfonts(soundfonts) -> dict[str, Path]:
    if soundfonts is not None:
        return resolve_soundfonts(soundfonts)
    found = find_soundfonts()
    chosen = {k: found[k] for k in STEMS_SOUNDFONTS if k in found}
    if "timgm6mb" not in chosen and "timgm6mb_pretty_midi" in found:
        chosen["timgm6mb_pretty_midi"] = found["timgm6mb_pretty_midi"]
    if not chosen:
        raise UsageError(
            f"None of the soundfonts {', '.join(STEMS_SOUNDFONTS)} was found on this machine.", hint=INSTALL_HINT
        )
    return chosen
