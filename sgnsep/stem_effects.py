# shim: sgnsep.stem_effects is now sgnsep.synth.stem_effects (issue 25); this name stays for one release.
import sys

from sgnsep.synth import stem_effects as _module

sys.modules[__name__] = _module
