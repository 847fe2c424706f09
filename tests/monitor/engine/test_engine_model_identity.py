"""The engine warns when a supplied encoder is not the one the model's head was trained on."""

import logging

import torch

from core.checkpoint import load_model
from core.encoder import save_encoder
from core.encoder.parity import parity_encoder
from core.paths import default_model_path
from monitor.engine.model import load_estimator


def test_foreign_encoder_is_reported(tmp_path, caplog):
    torch.set_num_threads(1)
    model = default_model_path()
    own = tmp_path / "own.pt"
    save_encoder(own, load_model(model).encoder_state_dict, {"description": "bundled encoder, re-saved"})
    foreign = tmp_path / "foreign.pt"
    save_encoder(foreign, parity_encoder(seed=3), {"description": "other weights"})

    with caplog.at_level(logging.WARNING, logger="monitor.engine.model"):
        load_estimator(model, own, device="cpu")
    assert not [r for r in caplog.records if "not the encoder" in r.getMessage()]

    with caplog.at_level(logging.WARNING, logger="monitor.engine.model"):
        load_estimator(model, foreign, device="cpu")
    warnings = [r.getMessage() for r in caplog.records if "not the encoder" in r.getMessage()]
    assert len(warnings) == 1 and "foreign.pt" in warnings[0] and "retrained" in warnings[0]
