# shim: sgnsep.config is now sgnsep.models.config (issue 25); this name stays for one release.
import sys

from sgnsep.models import config as _module

sys.modules[__name__] = _module
