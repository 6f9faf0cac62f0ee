# shim: sgnsep.checkpoint is now sgnsep.models.checkpoint (issue 25); this name stays for one release.
import sys

from sgnsep.models import checkpoint as _module

sys.modules[__name__] = _module
