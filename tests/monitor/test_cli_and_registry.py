import subprocess
import sys

import pytest

from core.modalities import DEFAULT_MODALITIES, get_modality, match_modality


@pytest.mark.parametrize(
    ("stype", "labels", "expected"),
    [
        ("EDA", (), "EDA"),
        ("GSR", (), "EDA"),
        ("PPG", (), "BVP"),
        ("bvp", (), "BVP"),
        ("Respiration", (), "RESP"),
        ("SPO2", (), "SpO2"),
        ("oxygen saturation", (), "SpO2"),
        ("", ("gsr_left",), "EDA"),
        ("Markers", (), None),
        ("EEG", ("Fp1",), None),
    ],
)
def test_match_modality(stype, labels, expected):
    assert match_modality(stype, labels) == expected


def test_overrides_win():
    assert match_modality("Biosignal", overrides={"biosignal": "resp"}) == "RESP"


def test_registry_defaults():
    assert DEFAULT_MODALITIES == ("EDA", "BVP", "RESP", "SpO2")
    assert get_modality("spo2").units == "%"
    with pytest.raises(KeyError, match="unknown modality"):
        get_modality("XYZ")


def test_painmon_help_and_info():
    out = subprocess.run([sys.executable, "-m", "monitor", "--help"], capture_output=True, text=True, check=True).stdout
    assert "info" in out and "bench" in out
    out = subprocess.run(
        [sys.executable, "-m", "monitor", "info", "--device", "cpu"], capture_output=True, text=True, check=True
    ).stdout
    assert "torch" in out and "Device: cpu" in out
    # the bundled model describes itself: what it was trained on, its encoder, the notice
    assert "trained on: simulated subjects" in out and "encoder:" in out and "not a medical device" in out


def test_model_option_choices_are_the_encoders_own():
    """--precision and --backend list exactly what load_encoder accepts (kept in monitor.options
    so that --help needs no torch import)."""
    import argparse

    from core.encoder import BACKENDS
    from core.encoder.precision import PRECISIONS
    from monitor import options

    assert set(options.BACKENDS) == set(BACKENDS)
    assert set(options.PRECISIONS) == set(PRECISIONS)
    parser = argparse.ArgumentParser()
    options.add_model_options(parser)
    assert options.model_options(parser.parse_args(["--backend", "openvino"])).backend == "openvino"
    assert options.model_options(parser.parse_args([])).backend is None
