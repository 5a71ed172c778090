"""Brand protection from what a brand gives the platform: reference photos, logos, names,
prices and authorised sellers (docs/brand_protection.md).

A model trained on labelled listings knows only the brands in its labels. This package compares
a listing with the brand catalog instead -- embedding similarity to the brand's official photos
and logos, a stolen-photo match, the seller's authorisation -- so a brand added to the catalog
is protected by re-exporting the model, without retraining it. It sits between the networks
(which embed images) and serving (which computes the same features for every request).
"""
