# shim: sgnsep.metrics is now sgnsep.evaluation.metrics (issue 25); this name stays for one release.
import sys

from sgnsep.evaluation import metrics as _module

sys.modules[__name__] = _module
