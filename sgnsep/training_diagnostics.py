# shim: sgnsep.training_diagnostics is now sgnsep.training.diagnostics (issue 25); this name stays for one release.
import sys

from sgnsep.training import diagnostics as _module

sys.modules[__name__] = _module
