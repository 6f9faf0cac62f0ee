# shim: sgnsep.embedding is now sgnsep.analysis.embedding (issue 25); this name stays for one release.
import sys

from sgnsep.analysis import embedding as _module

sys.modules[__name__] = _module
