"""Listing manifests, images, splits and the demo data: everything before a tensor."""
