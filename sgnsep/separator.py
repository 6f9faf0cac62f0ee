# shim: sgnsep.separator is now sgnsep.separation.separator (issue 25); this name stays for one release.
import sys

from sgnsep.separation import separator as _module

sys.modules[__name__] = _module
