"""Offline audio rendered from General MIDI soundfonts with tinysoundfont, for training and testing where no real
recordings can be downloaded: solo clips of one class each (`solos`, `sgnsep data synth`), four-part chorale
stems for evaluation (`chorale_stems`, `sgnsep data chorales`) and performed multi-part music (`music_corpus`,
`sgnsep data music`, with `score_library`, `performance`, `stem_effects` and `soundfont_presets`), made from
the classes in `instruments`, the soundfonts in `soundfonts`, the notes of `scores`, rendered by `render`,
brought to one loudness by `loudness` and written with their provenance by `corpus_files`; every corpus is
byte-identical from the same command. Installing (tinysoundfont's metadata pulls in pyaudio, which offline
rendering never uses): ``pip install --no-deps tinysoundfont; pip install music21 pretty_midi``, and Debian's
``fluid-soundfont-gm fluidr3mono-gm-soundfont musescore-general-soundfont-small timgm6mb-soundfont``. The
names below are importable from the package itself, as they were from the one module it replaces.
"""

# Lazy, so that importing one part does not load the others (tinysoundfont and music21 load only when used).
_EXPORTS = {
    **dict.fromkeys(["METADATA_VERSION", "synthesize_corpus"], "solos"),
    **dict.fromkeys(["STEMS_FORMATS", "STEMS_TARGET_DB", "STEMS_VERSION", "render_chorale_stems"], "chorale_stems"),
    **dict.fromkeys(["INSTRUMENTS", "Instrument", "MUSIC11_CLASSES", "ORCHESTRAL_CLASSES", "UNRENDERABLE",
                     "assign_instruments", "resolve_classes"], "instruments"),
    **dict.fromkeys(["SOUNDFONT_FILES", "STEMS_SOUNDFONTS", "add_soundfont_file", "check_soundfont_allowed",
                     "find_soundfonts", "resolve_soundfonts", "soundfont_family", "stems_soundfonts"], "soundfonts"),
    **dict.fromkeys(["CHORALE_TEMPO_BPM", "FERMATA_FACTOR", "Note", "RANDOM_TEMPO_BPM", "SCALES", "VOICES",
                     "chorale_clip", "chorale_ids", "chorale_time_map", "fit_to_range", "load_chorales",
                     "random_melody"], "scores"),
    **dict.fromkeys(["SILENCE_PEAK", "probe_preset", "render_notes"], "render"),
    **dict.fromkeys(["active_loudness_db", "normalise_loudness"], "loudness"),
    **dict.fromkeys(["METADATA_FORMAT", "STEMS_FORMAT", "first_other_file", "own_metadata", "provenance",
                     "read_metadata", "refuse_foreign_corpus_folder", "write_manifest", "write_stem",
                     "write_wav"], "corpus_files"),
    "SPLITS": "sgnsep.datasets.splits",
    "DEFAULT_SPLIT_FRACTIONS": "sgnsep.datasets.splits",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        module = _EXPORTS[name]
        return getattr(importlib.import_module(module if "." in module else f"sgnsep.synth.{module}"), name)
    raise AttributeError(f"module 'sgnsep.synth' has no attribute {name!r}")
