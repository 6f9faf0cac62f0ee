"""Training: the settings of a run (`config`), the training loop behind `sgnsep train` (`loop`), the examples it
trains on (`batch`: mix-and-separate targets of the paper's section III-C), validation and the choice of the best
checkpoint (`validation`), the run folder and its files (`run_folder`), and the diagnostics its log records
(`diagnostics`). The names below are importable from the package itself, as they were from the module it replaces.
"""

# Lazy, so that reading a config does not load torch and the data readers.
_EXPORTS = {
    **dict.fromkeys(["FINE_TUNABLE_AUDIO_SETTINGS", "FINE_TUNABLE_MODEL_SETTINGS", "TrainConfig", "config_from_dict",
                     "parse_overrides"], "config"),
    **dict.fromkeys(["TrainResult", "train"], "loop"),
    **dict.fromkeys(["DIVERGED_HINT", "TrainingDiverged", "load_validation_corpus", "validate", "validation_batches"],
                    "validation"),
    **dict.fromkeys(["CORPUS_VAL_COLUMNS", "LOG_COLUMNS", "RunFolder", "check_run_folder", "inspect_run_folder"],
                    "run_folder"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"sgnsep.training.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'sgnsep.training' has no attribute {name!r}")
