"""PainMon training: datasets, embedding cache, fusion-head training, evaluation, export."""
