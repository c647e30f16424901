# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Which extra SAM families are installed, and pytest marks that skip without them."""
import importlib.util

import pytest

HAS_HQ = (importlib.util.find_spec('segment_anything_hq') is not None
          and importlib.util.find_spec('timm') is not None)
HAS_SAM2 = importlib.util.find_spec('sam2') is not None
needs_hq = pytest.mark.skipif(not HAS_HQ, reason="HQ-SAM not installed: pip install -e '.[hq]'")
needs_sam2 = pytest.mark.skipif(
    not HAS_SAM2, reason="SAM 2 not installed: SAM2_BUILD_CUDA=0 pip install --no-build-isolation "
    "-e '.[sam2]'")
