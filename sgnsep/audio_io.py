# shim: sgnsep.audio_io is now sgnsep.audio.audio_io (issue 25); this name stays for one release.
import sys

from sgnsep.audio import audio_io as _module

sys.modules[__name__] = _module
