# shim: sgnsep.music_corpus is now sgnsep.synth.music_corpus (issue 25); this name stays for one release.
import sys

from sgnsep.synth import music_corpus as _module

sys.modules[__name__] = _module
