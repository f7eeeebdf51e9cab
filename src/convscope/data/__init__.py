"""The data the lessons run on: shipped digits and photos, image sets, digit scenes."""
