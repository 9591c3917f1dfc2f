"""The peers' tests read the rule snapshots in <repo>/../shared/peers; skip where they are absent."""

from __future__ import annotations

import pytest

from benchmarks.peers.panther import ROOT as PANTHER_ROOT
from benchmarks.peers.sigma import RULES as SIGMA_ROOT


@pytest.fixture
def panther_snapshot() -> None:
    if not PANTHER_ROOT.is_dir():
        pytest.skip(f"Panther snapshot not at {PANTHER_ROOT}")


@pytest.fixture
def sigma_snapshot() -> None:
    if not SIGMA_ROOT.is_dir():
        pytest.skip(f"Sigma snapshot not at {SIGMA_ROOT}")
