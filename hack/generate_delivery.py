#!/usr/bin/env python3
"""Generated delivery files (placeholder; filled in by the delivery work)."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    sys.exit(0)
