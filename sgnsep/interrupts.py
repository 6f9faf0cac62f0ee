# shim: sgnsep.interrupts is now sgnsep.core.interrupts (issue 25); this name stays for one release.
import sys

from sgnsep.core import interrupts as _module

sys.modules[__name__] = _module
