# shim: sgnsep.plotting is now sgnsep.plots.plotting (issue 25); this name stays for one release.
import sys

from sgnsep.plots import plotting as _module

sys.modules[__name__] = _module
