# shim: sgnsep.evaluate is now sgnsep.evaluation.evaluate (issue 25); this name stays for one release.
import sys

from sgnsep.evaluation import evaluate as _module

sys.modules[__name__] = _module
