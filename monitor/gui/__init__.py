"""The PainMon desktop dashboard (PySide6 + pyqtgraph).

Entry points: :func:`monitor.gui.app.run_monitor` and :func:`monitor.gui.app.run_demo`.
Everything here runs on the Qt GUI thread except what :mod:`monitor.gui.session` starts
(sources, engine, recorder), whose results reach the GUI through Qt signals or by the GUI
timer reading the ring buffers.
"""
