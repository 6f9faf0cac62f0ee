# shim: sgnsep.mixture_draws is now sgnsep.datasets.mixture_draws (issue 25); this name stays for one release.
import sys

from sgnsep.datasets import mixture_draws as _module

sys.modules[__name__] = _module
