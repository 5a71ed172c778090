"""Networks and LightningModules for image, text and fused classifiers."""
