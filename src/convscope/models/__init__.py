"""Every network of the lessons: the registry (`load_model`), architectures, FCNs, training."""
