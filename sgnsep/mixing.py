# shim: sgnsep.mixing is now sgnsep.training.batch (issue 25); this name stays for one release.
import sys

from sgnsep.training import batch as _module

sys.modules[__name__] = _module
