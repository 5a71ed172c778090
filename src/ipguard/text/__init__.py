"""Text normalisation and text features that see through obfuscated brand names."""
