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
  anything that publishes on LSL.
"""

from devices.lsl._discovery import DiscoveredStream, Predicate, discover
from devices.lsl._info import stream_info
from devices.lsl._source import LSLSource

__all__ = ["DiscoveredStream", "LSLSource", "Predicate", "discover", "stream_info"]
