# shim: sgnsep.model is now sgnsep.models.sgn (issue 25); this name stays for one release.
import sys

from sgnsep.models import sgn as _module

sys.modules[__name__] = _module
