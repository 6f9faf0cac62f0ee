# shim: sgnsep.performance is now sgnsep.synth.performance (issue 25); this name stays for one release.
import sys

from sgnsep.synth import performance as _module

sys.modules[__name__] = _module
