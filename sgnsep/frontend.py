# shim: sgnsep.frontend is now sgnsep.audio.frontend (issue 25); this name stays for one release.
import sys

from sgnsep.audio import frontend as _module

sys.modules[__name__] = _module
