"""Caffe files: prototxt and caffemodel readers, Caffe's layers, the net builder, weights."""
