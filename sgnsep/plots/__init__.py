"""Figures (matplotlib, an optional extra): spectrograms and masks of a separation, detection timelines, evaluation charts, embedding maps."""
