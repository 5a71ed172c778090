"""Generated data, so ipguard runs offline and can be checked on data with a marketplace's traits.

:mod:`ipguard.demo.listings` writes the demo dataset the default configs train, evaluate and
promote on (fictional brands; product photos from :mod:`ipguard.demo.photos`, multilingual
titles from :mod:`ipguard.demo.texts`), generated on first use. :mod:`ipguard.demo.catalogue`
writes a catalogue-like manifest: studio product photos that look alike but show different
items (:mod:`ipguard.demo.studio`), several photos per item, re-uploaded copies, many sellers,
markets and currencies, and a brand catalog with one price per brand and currency
(``python -m ipguard.demo.catalogue OUT_DIR``).
"""
