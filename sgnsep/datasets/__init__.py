"""Training and evaluation data: every dataset becomes a list of clips (one recording of one class) per split,
and mix-and-separate examples are drawn over them. `registry` names the datasets `--dataset` takes and loads one split (:func:`load_dataset`); `catalog` says in
words what each is, where it lives (``$SGNSEP_DATA/<name>``, ``SGNSEP_DATA`` defaulting to
``~/.cache/sgnsep/data``) and what is missing when it is not there; `folders` reads the user's solos
(``DIR/<class>/*.wav``) and stems (``DIR/<track>/<class>.wav``) folders, `public` the published layouts of
MUSIC, MUSIC-21, FUSS, MUSDB18 and VGG-Sound (their full text is in ``DATASETS[name].layout``); `listing` turns
any listing into clips, `clips` reads them lazily at the model rate, `splits` assigns train/val/test by a
stable hash, and `sampling` draws the mixtures (their levels and hard pairs: `mixture_draws`). The
names below are importable from the package itself, as they were from the one module it replaces.
"""

# Lazy, so that importing one part (say `sgnsep.datasets.splits`) does not load every dataset's reader.
_EXPORTS = {
    **dict.fromkeys(["DATASETS", "DatasetSpec", "describe_datasets", "load_dataset"], "registry"),
    **dict.fromkeys(["DatasetNotFound", "OFFLINE_TEXT", "data_root", "default_data_dir"], "catalog"),
    **dict.fromkeys(["Clip", "ClipDataset", "DEFAULT_CACHE_BYTES", "cache_limit_bytes", "read_window",
                     "resampled_length"], "clips"),
    **dict.fromkeys(["MUSIC_CORPUS_FORMAT", "SolosDataset", "music_corpus_tracks"], "folders"),
    **dict.fromkeys(["sample_mixture"], "sampling"),
    **dict.fromkeys(["SPLITS", "hash_fraction", "rank_splits"], "splits"),
    **dict.fromkeys(["FUSS_SPLITS", "MUSDB_SOURCES", "MUSDB_VALIDATION_TRACKS", "MUSIC11_CLASSES", "MUSIC21_CLASSES",
                     "MUSIC_TEST_FRACTION", "MUSIC_VAL_FRACTION", "VGGSOUND_VAL_FRACTION", "musdb_split",
                     "music_split", "vggsound_clip_id", "vggsound_split"], "public"),
    **dict.fromkeys(["VIDEO_EXTENSIONS"], "listing"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"sgnsep.datasets.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'sgnsep.datasets' has no attribute {name!r}")
