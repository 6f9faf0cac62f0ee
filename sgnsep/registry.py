# shim: sgnsep.registry is now sgnsep.models.registry (issue 25); this name stays for one release.
import sys

from sgnsep.models import registry as _module

sys.modules[__name__] = _module
