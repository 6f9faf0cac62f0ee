# shim: sgnsep.soundfont_presets is now sgnsep.synth.soundfont_presets (issue 25); this name stays for one release.
import sys

from sgnsep.synth import soundfont_presets as _module

sys.modules[__name__] = _module
