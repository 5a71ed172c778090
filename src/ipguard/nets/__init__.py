"""Plain torch networks (image, text, fusion) that training wraps and serving loads; no Lightning."""
