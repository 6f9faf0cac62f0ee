# shim: sgnsep.folder_lock is now sgnsep.core.folder_lock (issue 25); this name stays for one release.
import sys

from sgnsep.core import folder_lock as _module

sys.modules[__name__] = _module
