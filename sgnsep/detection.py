# shim: sgnsep.detection is now sgnsep.analysis.detection (issue 25); this name stays for one release.
import sys

from sgnsep.analysis import detection as _module

sys.modules[__name__] = _module
