# shim: sgnsep.baselines is now sgnsep.models.baselines (issue 25); this name stays for one release.
import sys

from sgnsep.models import baselines as _module

sys.modules[__name__] = _module
