# shim: sgnsep.chunking is now sgnsep.separation.chunk_plan, sgnsep.separation.overlap_add and sgnsep.audio.resample
# (issue 25); this name re-exports their public names for one release.
from sgnsep.audio.resample import MAX_INPUT_RATE, MAX_RESAMPLE_TERMS, MIN_INPUT_RATE, rate_problem  # noqa: F401
from sgnsep.separation.chunk_plan import SYNTHESIS_STEP, ChunkPlan, make_plan, segment_layout, segment_weights  # noqa: F401
from sgnsep.separation.overlap_add import SYNTHESIS_BLOCK_FRAMES, MaskFn, host_memory, separate_chunk  # noqa: F401
