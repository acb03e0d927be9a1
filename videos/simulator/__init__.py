"""A kie.ai-compatible server that renders real clips, for running and testing without an account.

from videos.simulator import KieSimulator, SimulatorConfig
with KieSimulator(SimulatorConfig(port=0, allow_control=True)) as simulator:
    ...  # point a KieProvider at simulator.base_url
"""

from __future__ import annotations

from videos.simulator.faults import FaultRule, Faults
from videos.simulator.rendering import RenderSettings
from videos.simulator.server import KieSimulator
from videos.simulator.service import SimulatorConfig

__all__ = ["FaultRule", "Faults", "KieSimulator", "RenderSettings", "SimulatorConfig"]
