# shim: sgnsep.bounds is now sgnsep.core.bounds (issue 25); this name stays for one release.
import sys

from sgnsep.core import bounds as _module

sys.modules[__name__] = _module
