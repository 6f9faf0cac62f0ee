# shim: sgnsep.separation_job is now sgnsep.separation.separation_job (issue 25); this name stays for one release.
import sys

from sgnsep.separation import separation_job as _module

sys.modules[__name__] = _module
