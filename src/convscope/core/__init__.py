"""What every lesson stands on: nets, tables, transforms, plotting, errors, inspection, the
meta-device pass, geometry, metrics, checkpoints, the bilinear kernel, transplants."""
