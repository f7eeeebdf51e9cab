"""Lessons 03-04: the fully convolutional cast, dense maps, shape tables, upsampling."""
