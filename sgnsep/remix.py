# shim: sgnsep.remix is now sgnsep.separation.remix (issue 25); this name stays for one release.
import sys

from sgnsep.separation import remix as _module

sys.modules[__name__] = _module
