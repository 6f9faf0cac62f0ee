# shim: sgnsep.resampled_mono is now sgnsep.audio.resampled_mono (issue 25); this name stays for one release.
import sys

from sgnsep.audio import resampled_mono as _module

sys.modules[__name__] = _module
