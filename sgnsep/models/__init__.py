"""The networks: the architecture baselines SGN is compared with (U-Net, Conditioned U-Net), checkpoints (safetensors weights and a JSON config, never pickle) and the registry of named models."""
