"""Lessons 05-06: deconvnet, top activations, occlusion, saliency, localisation."""
