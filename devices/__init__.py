"""PainMon devices: everything that produces or stores samples (LSL, MQTT, replay,
simulator, recording). Feeds :class:`core.buffers.BufferHub`; never imports Qt."""
