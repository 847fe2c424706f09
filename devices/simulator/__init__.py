"""Simulated wearable: physiologically plausible EDA, BVP, RESP and SpO2 under scheduled pain.

Library use::

    from devices.simulator import PainSchedule, SubjectProfile, simulate
    rec = simulate(SubjectProfile.random(1), PainSchedule.parse("no:30,high:20,no:30"), 80, seed=1)
    values, fs = rec.signals["BVP"]

What this package offers:

* offline — :func:`simulate` (one subject's whole labelled :class:`SimulatedRecording`),
  :class:`SubjectProfile` (who; :meth:`SubjectProfile.varied` for wide training ranges),
  :class:`SensorSettings` (the measuring device: gains, offsets, rates, coloured noise,
  drift; :meth:`SensorSettings.random`), :class:`PainSchedule` (when which pain :data:`LEVELS`;
  :class:`ScheduleError` for a bad schedule), :data:`DEFAULT_RATES`, :data:`CHANNEL_LABELS`
  and :data:`UNITS` of each modality;
* live — :class:`SimulatedWearable` (subjects ``sim-1`` ... producing :class:`SimChunk`
  records as time passes; :func:`subject_id`, :func:`subject_seed`) published by
  :class:`LSLSimulator` (LSL outlets) or :class:`MQTTSimulator` (an MQTT broker), or fed
  straight into a hub by :class:`SimulatorSource`;
* datasets — :func:`write_dataset` writes subjects in the AI4PAIN 2025 layout.
"""

from devices.simulator._dataset import write_dataset
from devices.simulator._lsl_outlets import LSLSimulator
from devices.simulator._mqtt_outlets import MQTTSimulator
from devices.simulator._offline import SimulatedRecording, simulate
from devices.simulator._physiology import CHANNEL_LABELS, DEFAULT_RATES, UNITS
from devices.simulator._profile import SubjectProfile
from devices.simulator._schedule import LEVELS, PainSchedule, ScheduleError
from devices.simulator._sensor import SensorSettings
from devices.simulator._source import SimulatorSource
from devices.simulator._wearable import (
    SimChunk,
    SimulatedWearable,
    subject_id,
    subject_seed,
)

__all__ = [
    "CHANNEL_LABELS",
    "DEFAULT_RATES",
    "LEVELS",
    "UNITS",
    "LSLSimulator",
    "MQTTSimulator",
    "PainSchedule",
    "ScheduleError",
    "SensorSettings",
    "SimChunk",
    "SimulatedRecording",
    "SimulatedWearable",
    "SimulatorSource",
    "SubjectProfile",
    "simulate",
    "subject_id",
    "subject_seed",
    "write_dataset",
]
