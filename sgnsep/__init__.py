"""sgnsep: separate the instruments or sound classes you name, with the Semantic Grouping Network."""

from sgnsep._version import __version__
from sgnsep.core.errors import SgnsepError

__all__ = ["__version__", "SgnsepError", "Separator"]


def __getattr__(name):
    # Lazy so that `import sgnsep` (and the CLI's --help) does not pay for importing torch.
    if name == "Separator":
        from sgnsep.separation.separator import Separator

        return Separator
    raise AttributeError(name)
