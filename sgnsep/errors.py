# shim: sgnsep.errors is now sgnsep.core.errors (issue 25); this name stays for one release.
import sys

from sgnsep.core import errors as _module

sys.modules[__name__] = _module
