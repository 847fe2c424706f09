"""Lab Streaming Layer for PainMon: follow LSL streams into the hub, find them, publish them.

What this package offers:

* :class:`LSLSource` — a :class:`devices.source.Source` that follows every LSL stream matching
  its filters, feeds the hub, and survives devices coming and going (lost within ~2 s,
  followed again when the outlet returns);
* :func:`discover` and :class:`DiscoveredStream` — one look at the network, each stream mapped
  to a subject and modality (the connect dialog's list); :data:`Predicate` — an XPath
  predicate or a Python test of a :class:`DiscoveredStream`;
* :func:`stream_info` — a ``pylsl.StreamInfo`` following PainMon's conventions (name
  ``"<subject> <modality>"``, type = modality, ``<desc>`` with subject and channels), for
  anything that publishes on LSL;
* :func:`quiet_liblsl` — lowers liblsl's own log level (called on import of this package,
  before any LSL use; ``PAINMON_LSL_LOG_LEVEL`` overrides).
"""

from devices.lsl._discovery import DiscoveredStream, Predicate, discover
from devices.lsl._info import stream_info
from devices.lsl._liblsl import quiet_liblsl
from devices.lsl._source import LSLSource

quiet_liblsl()  # importing pylsl does not start liblsl; its first call does

__all__ = ["DiscoveredStream", "LSLSource", "Predicate", "discover", "quiet_liblsl", "stream_info"]
