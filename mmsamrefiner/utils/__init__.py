# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Small helpers shared by the package's layers (no MM dependencies)."""
