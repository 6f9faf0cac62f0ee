"""The Hugging Face Hub: fetching checkpoints into the standard cache, verified and within deadlines (`download`,
through `transfer`, `blob_cache` and `limits`; its failures in `download_errors`; the settings read at call time in
`settings`), publishing them with a generated model card (`push`, `card`, `card_markdown`), and the repo ids and
revisions sgnsep accepts (`repo_id`). The names below are importable from the package itself, as they were from
the module it replaces.
"""

# Lazy, so that importing one part does not load huggingface_hub and the rest.
_EXPORTS = {
    **dict.fromkeys(["download_checkpoint"], "download"),
    **dict.fromkeys(["CHECKPOINT_FILES", "CONNECT_TIMEOUT_S"], "settings"),
    **dict.fromkeys(["PICKLE_SUFFIXES", "PushResult", "push_checkpoint"], "push"),
    **dict.fromkeys(["is_commit_hash", "parse_repo_id"], "repo_id"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"sgnsep.hub.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'sgnsep.hub' has no attribute {name!r}")
