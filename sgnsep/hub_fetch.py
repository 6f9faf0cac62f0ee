# shim: sgnsep.hub_fetch is now sgnsep.hub.transfer, sgnsep.hub.blob_cache and sgnsep.hub.limits (issue 25); this
# name re-exports their public names for one release.
from sgnsep.hub.blob_cache import cached_problem, content_problem, discard_cached, file_problem, storage_folder  # noqa: F401
from sgnsep.hub.limits import (  # noqa: F401
    BadContent, BadDownload, DeadlineExceeded, FetchError, Limits, NoAnswer, TooSlow, Unverifiable,
)
from sgnsep.hub.transfer import RemoteFile, download, fetch, remote_file, remove_stale_partials  # noqa: F401
