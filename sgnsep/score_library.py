# shim: sgnsep.score_library is now sgnsep.synth.score_library (issue 25); this name stays for one release.
import sys

from sgnsep.synth import score_library as _module

sys.modules[__name__] = _module
