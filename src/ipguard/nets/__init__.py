"""Plain torch networks (image, text, fusion) that training wraps and serving loads.

No Lightning here: serving imports these without the training stack.
"""
