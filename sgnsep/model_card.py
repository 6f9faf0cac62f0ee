# shim: sgnsep.model_card is now sgnsep.hub.card (issue 25); this name stays for one release.
import sys

from sgnsep.hub import card as _module

sys.modules[__name__] = _module
