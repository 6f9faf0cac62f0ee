# shim: sgnsep.atomic_write is now sgnsep.core.atomic_write (issue 25); this name stays for one release.
import sys

from sgnsep.core import atomic_write as _module

sys.modules[__name__] = _module
