"""Audio in and out: reading and writing files (soundfile), the mono model-rate view of a file, and the STFT front end with its frequency warp (paper section IV-A)."""
