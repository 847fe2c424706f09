"""Simulated wearable: physiologically plausible EDA, BVP, RESP and SpO2 under scheduled pain.

Library use::

    from devices.simulator import PainSchedule, SubjectProfile, simulate
    rec = simulate(SubjectProfile.random(1), PainSchedule.parse("no:30,high:20,no:30"), 80, seed=1)
    values, fs = rec.signals["BVP"]

Live use: :class:`SimulatedWearable` + :class:`LSLSimulator` (LSL outlets) or
:class:`SimulatorSource` (straight into a BufferHub). Datasets: :func:`write_dataset`.
"""

from devices.simulator.dataset import write_dataset
from devices.simulator.lsl_outlets import LSLSimulator
from devices.simulator.offline import SimulatedRecording, simulate
from devices.simulator.physiology import DEFAULT_RATES
from devices.simulator.profile import SubjectProfile
from devices.simulator.schedule import LEVELS, PainSchedule, ScheduleError
from devices.simulator.source import SimulatorSource
from devices.simulator.wearable import SimChunk, SimulatedWearable, subject_id, subject_seed

__all__ = [
    "DEFAULT_RATES", "LEVELS", "LSLSimulator", "PainSchedule", "ScheduleError", "SimChunk",
    "SimulatedRecording", "SimulatedWearable", "SimulatorSource", "SubjectProfile", "simulate",
    "subject_id", "subject_seed", "write_dataset",
]
