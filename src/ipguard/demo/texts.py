"""Multilingual titles and descriptions for the synthetic demo listings.

The phrasebooks carry the vocabulary a screening model has to cope with in each language:
honest listing language (including "original"/"authentic" claims, which both honest and
dishonest sellers make, so they carry no signal), authorised-reseller and clearance wording
(hard negatives for price-based reasoning), coded counterfeit wording, parody disclaimers, and
the brand-name obfuscations sellers use to slip past keyword filters. Composition is driven by
an explicit :class:`TextPlan` so the generator, not this module, decides which cues a listing
shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LANGUAGES: tuple[str, ...] = ("en", "es", "pt", "de", "fr", "ja", "ru")

COLOUR_KEYS: tuple[str, ...] = ("black", "white", "red", "blue", "green", "beige", "pink", "grey")

OBFUSCATIONS: tuple[str, ...] = ("homoglyph", "fullwidth", "spacing", "dots", "leet", "zero_width")


@dataclass(frozen=True)
class Phrasebook:
    """Everything one language contributes; `{brand}` marks where the brand name goes."""

    title_templates: tuple[str, ...]
    nouns: dict[str, tuple[str, ...]]
    colours: tuple[str, ...]  # aligned with COLOUR_KEYS
    new_tags: tuple[str, ...]
    claims: tuple[str, ...]  # "original"/"authentic": said by honest and dishonest sellers alike
    reseller_tags: tuple[str, ...]
    counterfeit_tags: tuple[str, ...]  # short coded wording that fits in a title
    dupe_tags: tuple[str, ...]  # "inspired by {brand}": replaces the brand mention
    parody_tag: str
    base_sentences: tuple[str, ...]
    counterfeit_sentences: tuple[str, ...]
    reseller_sentences: tuple[str, ...]
    parody_sentences: tuple[str, ...]
    noise_sentences: tuple[str, ...]


_EN = Phrasebook(
    title_templates=(
        "{brand} {line} {noun} {colour} {tag}",
        "{tag} {brand} {noun} {line} - {colour}",
    ),
    nouns={
        "sneakers": ("sneakers", "running shoes"),
        "handbags": ("handbag", "leather tote"),
        "watches": ("watch", "chronograph watch"),
        "headphones": ("headphones", "wireless headphones"),
        "sunglasses": ("sunglasses", "polarized sunglasses"),
        "perfume": ("eau de parfum 100ml", "perfume"),
    },
    colours=("black", "white", "red", "blue", "green", "beige", "pink", "grey"),
    new_tags=("new", "brand new", "NWT", "new in box"),
    claims=("100% original", "authentic", "genuine"),
    reseller_tags=("authorised reseller", "outlet", "clearance"),
    counterfeit_tags=("1:1", "AAA", "replica", "mirror quality", "top quality copy", "UA", "7A"),
    dupe_tags=("inspired by {brand}", "{brand} dupe", "{brand} style"),
    parody_tag="parody",
    base_sentences=(
        "Brand new with tags, never worn.",
        "Ships within 24 hours with tracking.",
        "Comes with the original box and receipt.",
        "Free returns within 30 days.",
        "Sizes available, message us.",
    ),
    counterfeit_sentences=(
        "Mirror quality, same materials as the original.",
        "1:1 copy, nobody can tell the difference.",
        "Top quality replica, no box.",
        "Dupe of the famous {brand} model at a fraction of the price.",
        "AAA grade, factory direct.",
    ),
    reseller_sentences=(
        "We are an authorised reseller; last-season stock at outlet prices.",
        "Clearance: genuine product with full warranty.",
    ),
    parody_sentences=("Parody design, not affiliated with {brand}.", "Funny parody print."),
    noise_sentences=("pls read description!!", "fast ship 🔥", "no lowballers", "Great gift idea"),
)

_ES = Phrasebook(
    title_templates=(
        "{noun} {brand} {line} {colour} {tag}",
        "{tag} {brand} {line} {noun} {colour}",
    ),
    nouns={
        "sneakers": ("zapatillas", "tenis"),
        "handbags": ("bolso", "bolsa de piel"),
        "watches": ("reloj", "reloj cronógrafo"),
        "headphones": ("audífonos", "auriculares inalámbricos"),
        "sunglasses": ("gafas de sol", "lentes de sol"),
        "perfume": ("perfume", "eau de parfum 100 ml"),
    },
    colours=("negro", "blanco", "rojo", "azul", "verde", "beige", "rosa", "gris"),
    new_tags=("nuevo", "nuevo con etiqueta", "a estrenar"),
    claims=("100% original", "auténtico", "original"),
    reseller_tags=("distribuidor autorizado", "outlet", "liquidación"),
    counterfeit_tags=(
        "réplica",
        "AAA",
        "1:1",
        "calidad espejo",
        "copia de alta calidad",
        "tipo original",
        "clon",
    ),
    dupe_tags=("inspirado en {brand}", "estilo {brand}", "tipo {brand}"),
    parody_tag="parodia",
    base_sentences=(
        "Nuevo con etiquetas, sin usar.",
        "Envío en 24 horas con seguimiento.",
        "Incluye caja original y factura.",
        "Devolución gratuita en 30 días.",
        "Tallas disponibles, pregunta.",
    ),
    counterfeit_sentences=(
        "Calidad espejo, mismos materiales que el original.",
        "Copia 1:1, nadie nota la diferencia.",
        "Réplica de máxima calidad, sin caja.",
        "Clon del famoso modelo {brand} a una fracción del precio.",
        "Calidad AAA, directo de fábrica.",
    ),
    reseller_sentences=(
        "Somos distribuidor autorizado; stock de temporada pasada a precio outlet.",
        "Liquidación: producto original con garantía.",
    ),
    parody_sentences=("Diseño de parodia, sin relación con {brand}.", "Estampado de parodia."),
    noise_sentences=(
        "¡¡Lee la descripción!!",
        "envío rápido 🔥",
        "no acepto ofertas bajas",
        "Ideal para regalo",
    ),
)

_PT = Phrasebook(
    title_templates=(
        "{noun} {brand} {line} {colour} {tag}",
        "{tag} {noun} {brand} {line} {colour}",
    ),
    nouns={
        "sneakers": ("tênis", "tênis de corrida"),
        "handbags": ("bolsa", "bolsa de couro"),
        "watches": ("relógio", "relógio cronógrafo"),
        "headphones": ("fone de ouvido", "headphone sem fio"),
        "sunglasses": ("óculos de sol", "óculos escuros"),
        "perfume": ("perfume", "eau de parfum 100ml"),
    },
    colours=("preto", "branco", "vermelho", "azul", "verde", "bege", "rosa", "cinza"),
    new_tags=("novo", "lacrado", "novo com etiqueta"),
    claims=("original", "100% original", "autêntico"),
    reseller_tags=("revendedor autorizado", "outlet", "queima de estoque"),
    counterfeit_tags=(
        "réplica",
        "primeira linha",
        "1:1",
        "qualidade espelho",
        "cópia perfeita",
        "AAA",
    ),
    dupe_tags=("inspirado em {brand}", "similar {brand}", "estilo {brand}"),
    parody_tag="paródia",
    base_sentences=(
        "Novo com etiqueta, nunca usado.",
        "Envio em 24 horas com rastreio.",
        "Acompanha caixa original e nota fiscal.",
        "Devolução grátis em 30 dias.",
        "Tamanhos disponíveis, pergunte.",
    ),
    counterfeit_sentences=(
        "Qualidade espelho, mesmos materiais do original.",
        "Cópia 1:1, ninguém percebe a diferença.",
        "Réplica primeira linha, sem caixa.",
        "Réplica do famoso modelo {brand} por uma fração do preço.",
        "Qualidade AAA, direto da fábrica.",
    ),
    reseller_sentences=(
        "Somos revendedor autorizado; estoque da última coleção a preço de outlet.",
        "Queima de estoque: produto original com garantia.",
    ),
    parody_sentences=("Design de paródia, sem relação com {brand}.", "Estampa de paródia."),
    noise_sentences=(
        "Leia a descrição!!",
        "envio rápido 🔥",
        "não aceito propostas baixas",
        "Ótimo para presente",
    ),
)

_DE = Phrasebook(
    title_templates=(
        "{brand} {line} {noun} {colour} {tag}",
        "{tag} {brand} {noun} {line} {colour}",
    ),
    nouns={
        "sneakers": ("Sneaker", "Laufschuhe"),
        "handbags": ("Handtasche", "Ledertasche"),
        "watches": ("Uhr", "Chronograph"),
        "headphones": ("Kopfhörer", "kabellose Kopfhörer"),
        "sunglasses": ("Sonnenbrille", "polarisierte Sonnenbrille"),
        "perfume": ("Parfum", "Eau de Parfum 100 ml"),
    },
    colours=("schwarz", "weiß", "rot", "blau", "grün", "beige", "rosa", "grau"),
    new_tags=("neu", "OVP", "neu mit Etikett"),
    claims=("Original", "echt", "100% Original"),
    reseller_tags=("autorisierter Händler", "Outlet", "Räumungsverkauf"),
    counterfeit_tags=("Replik", "1:1", "Spiegelqualität", "Top-Kopie", "AAA", "Nachbildung"),
    dupe_tags=("inspiriert von {brand}", "{brand} Dupe", "im {brand}-Stil"),
    parody_tag="Parodie",
    base_sentences=(
        "Neu mit Etikett, nie getragen.",
        "Versand innerhalb von 24 Stunden mit Sendungsverfolgung.",
        "Mit Originalkarton und Rechnung.",
        "Kostenlose Rückgabe innerhalb von 30 Tagen.",
        "Größen verfügbar, einfach anfragen.",
    ),
    counterfeit_sentences=(
        "Spiegelqualität, gleiche Materialien wie das Original.",
        "1:1 Kopie, kein Unterschied erkennbar.",
        "Replik in Top-Qualität, ohne Karton.",
        "Dupe des bekannten {brand} Modells zum Bruchteil des Preises.",
        "AAA-Qualität, direkt ab Fabrik.",
    ),
    reseller_sentences=(
        "Wir sind autorisierter Händler; Ware der letzten Saison zu Outlet-Preisen.",
        "Räumungsverkauf: Originalware mit Garantie.",
    ),
    parody_sentences=("Parodie-Design, keine Verbindung zu {brand}.", "Lustiger Parodie-Print."),
    noise_sentences=(
        "Bitte Beschreibung lesen!!",
        "schneller Versand 🔥",
        "keine Tauschangebote",
        "Tolle Geschenkidee",
    ),
)

_FR = Phrasebook(
    title_templates=(
        "{noun} {brand} {line} {colour} {tag}",
        "{tag} {brand} {line} {noun} {colour}",
    ),
    nouns={
        "sneakers": ("baskets", "chaussures de course"),
        "handbags": ("sac à main", "sac en cuir"),
        "watches": ("montre", "montre chronographe"),
        "headphones": ("casque audio", "casque sans fil"),
        "sunglasses": ("lunettes de soleil", "lunettes polarisées"),
        "perfume": ("parfum", "eau de parfum 100 ml"),
    },
    colours=("noir", "blanc", "rouge", "bleu", "vert", "beige", "rose", "gris"),
    new_tags=("neuf", "neuf avec étiquette", "jamais porté"),
    claims=("authentique", "100% original", "original"),
    reseller_tags=("revendeur agréé", "déstockage", "outlet"),
    counterfeit_tags=("réplique", "1:1", "qualité miroir", "copie haute qualité", "AAA"),
    dupe_tags=("inspiré de {brand}", "style {brand}", "dupe {brand}"),
    parody_tag="parodie",
    base_sentences=(
        "Neuf avec étiquette, jamais porté.",
        "Expédition sous 24 h avec suivi.",
        "Livré avec boîte d'origine et facture.",
        "Retour gratuit sous 30 jours.",
        "Tailles disponibles, contactez-nous.",
    ),
    counterfeit_sentences=(
        "Qualité miroir, mêmes matériaux que l'original.",
        "Copie 1:1, impossible de voir la différence.",
        "Réplique haute qualité, sans boîte.",
        "Dupe du célèbre modèle {brand} à une fraction du prix.",
        "Qualité AAA, direct usine.",
    ),
    reseller_sentences=(
        "Revendeur agréé ; stock de la saison passée à prix outlet.",
        "Déstockage : produit authentique avec garantie.",
    ),
    parody_sentences=("Design parodique, sans lien avec {brand}.", "Imprimé parodie humoristique."),
    noise_sentences=(
        "Merci de lire la description !!",
        "envoi rapide 🔥",
        "pas d'offres ridicules",
        "Idée cadeau",
    ),
)

_JA = Phrasebook(
    title_templates=(
        "{tag} {brand} {line} {noun} {colour}",
        "{brand} {noun} {line} {colour} {tag}",
    ),
    nouns={
        "sneakers": ("スニーカー", "ランニングシューズ"),
        "handbags": ("ハンドバッグ", "レザートートバッグ"),
        "watches": ("腕時計", "クロノグラフ"),
        "headphones": ("ヘッドホン", "ワイヤレスヘッドホン"),
        "sunglasses": ("サングラス", "偏光サングラス"),
        "perfume": ("香水", "オードパルファム 100ml"),
    },
    colours=(
        "ブラック",
        "ホワイト",
        "レッド",
        "ブルー",
        "グリーン",
        "ベージュ",
        "ピンク",
        "グレー",
    ),
    new_tags=("【新品】", "新品未使用", "タグ付き"),
    claims=("正規品", "本物", "100%正規品"),
    reseller_tags=("正規取扱店", "アウトレット", "在庫処分"),
    counterfeit_tags=("レプリカ", "スーパーコピー", "N級品", "1:1", "ミラー品質", "コピー品"),
    dupe_tags=("{brand}風", "{brand}インスパイア", "{brand}タイプ"),
    parody_tag="パロディ",
    base_sentences=(
        "新品・タグ付き、未使用です。",
        "24時間以内に追跡付きで発送します。",
        "箱と保証書が付属します。",
        "30日以内の返品無料。",
        "サイズはお問い合わせください。",
    ),
    counterfeit_sentences=(
        "ミラー品質、素材は本物と同じです。",
        "1:1コピー、見分けがつきません。",
        "最高品質のレプリカ、箱なし。",
        "有名な{brand}モデルのスーパーコピーをお手頃価格で。",
        "N級品、工場直送。",
    ),
    reseller_sentences=(
        "正規取扱店です。前シーズンの在庫をアウトレット価格で。",
        "在庫処分：保証付きの正規品です。",
    ),
    parody_sentences=(
        "パロディデザインです。{brand}とは無関係です。",
        "おもしろパロディプリント。",
    ),
    noise_sentences=(
        "説明文を必ずお読みください！！",
        "即日発送🔥",
        "値下げ交渉不可",
        "プレゼントに",
    ),
)

_RU = Phrasebook(
    title_templates=(
        "{noun} {brand} {line} {colour} {tag}",
        "{tag} {brand} {line} {noun} {colour}",
    ),
    nouns={
        "sneakers": ("кроссовки", "беговые кроссовки"),
        "handbags": ("сумка", "кожаная сумка"),
        "watches": ("часы", "часы хронограф"),
        "headphones": ("наушники", "беспроводные наушники"),
        "sunglasses": ("солнцезащитные очки", "поляризационные очки"),
        "perfume": ("духи", "парфюмерная вода 100 мл"),
    },
    colours=("чёрный", "белый", "красный", "синий", "зелёный", "бежевый", "розовый", "серый"),
    new_tags=("новые", "новый с биркой", "в упаковке"),
    claims=("оригинал", "100% оригинал", "подлинный"),
    reseller_tags=("официальный дилер", "аутлет", "распродажа"),
    counterfeit_tags=("реплика", "копия", "люкс копия", "1:1", "зеркальное качество", "AAA"),
    dupe_tags=("в стиле {brand}", "по мотивам {brand}", "аналог {brand}"),
    parody_tag="пародия",
    base_sentences=(
        "Новые с бирками, не носились.",
        "Отправка в течение 24 часов с трек-номером.",
        "Оригинальная коробка и чек в комплекте.",
        "Бесплатный возврат в течение 30 дней.",
        "Размеры в наличии, пишите.",
    ),
    counterfeit_sentences=(
        "Зеркальное качество, материалы как у оригинала.",
        "Копия 1:1, никто не отличит.",
        "Реплика высшего качества, без коробки.",
        "Люкс копия известной модели {brand} за малую часть цены.",
        "Качество AAA, напрямую с фабрики.",
    ),
    reseller_sentences=(
        "Мы официальный дилер; остатки прошлого сезона по ценам аутлета.",
        "Распродажа: оригинальный товар с гарантией.",
    ),
    parody_sentences=("Пародийный дизайн, не связан с {brand}.", "Забавный пародийный принт."),
    noise_sentences=("Читайте описание!!", "быстрая отправка 🔥", "без торга", "Отличный подарок"),
)

PHRASEBOOKS: dict[str, Phrasebook] = {
    "en": _EN,
    "es": _ES,
    "pt": _PT,
    "de": _DE,
    "fr": _FR,
    "ja": _JA,
    "ru": _RU,
}

# Look-alike code points sellers substitute for Latin letters (Cyrillic first, then Greek).
_HOMOGLYPHS: dict[str, tuple[str, ...]] = {
    "a": ("а",),
    "c": ("с",),
    "e": ("е",),
    "i": ("і",),
    "o": ("о", "ο"),
    "p": ("р",),
    "s": ("ѕ",),
    "x": ("х",),
    "y": ("у",),
    "A": ("А", "Α"),
    "B": ("В", "Β"),
    "C": ("С",),
    "E": ("Е", "Ε"),
    "H": ("Н", "Η"),
    "I": ("І", "Ι"),
    "K": ("К", "Κ"),
    "M": ("М", "Μ"),
    "N": ("Ν",),
    "O": ("О", "Ο"),
    "P": ("Р", "Ρ"),
    "T": ("Т", "Τ"),
    "X": ("Х", "Χ"),
    "Z": ("Ζ",),
}
_LEET: dict[str, str] = {"a": "4", "e": "3", "o": "0", "i": "1", "l": "1", "s": "5", "t": "7"}
_ZERO_WIDTH: tuple[str, ...] = ("\u200b", "\u200c", "\u200d", "\u2060")


def obfuscate_brand(name: str, method: str, rng: np.random.Generator) -> str:
    """Disguise a brand name the way sellers dodge keyword filters; never returns `name`.

    A method with nothing to substitute in this name (no look-alike letter) falls back to
    spacing, so a listing that was planned to carry an obfuscation always does.
    """
    if method == "homoglyph":
        positions = [i for i, ch in enumerate(name) if ch in _HOMOGLYPHS]
        if positions:
            chars = list(name)
            count = min(len(positions), int(rng.integers(1, 3)))
            for i in rng.choice(positions, size=count, replace=False):
                options = _HOMOGLYPHS[chars[i]]
                chars[i] = options[int(rng.integers(len(options)))]
            return "".join(chars)
        method = "spacing"
    if method == "leet":
        positions = [i for i, ch in enumerate(name) if ch.lower() in _LEET]
        if positions:
            chars = list(name)
            count = min(len(positions), int(rng.integers(1, 3)))
            for i in rng.choice(positions, size=count, replace=False):
                chars[i] = _LEET[chars[i].lower()]
            return "".join(chars)
        method = "spacing"
    if method == "fullwidth":
        return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in name)
    if method == "spacing":
        return " ".join(name)
    if method == "dots":
        separator = (".", "-", "*", "_")[int(rng.integers(4))]
        return separator.join(name)
    if method == "zero_width":
        chars = list(name)
        count = min(len(name) - 1, int(rng.integers(1, 3)))
        for i in sorted(rng.choice(np.arange(1, len(name)), size=count, replace=False))[::-1]:
            chars.insert(int(i), _ZERO_WIDTH[int(rng.integers(len(_ZERO_WIDTH)))])
        return "".join(chars)
    raise ValueError(f"obfuscation method: expected one of {OBFUSCATIONS}, found {method!r}")


def honest_misspelling(name: str, rng: np.random.Generator) -> str:
    """A careless (not adversarial) typo: a doubled or dropped letter, as honest sellers make."""
    i = int(rng.integers(1, len(name)))
    if rng.random() < 0.5:
        return name[:i] + name[i - 1] + name[i:]
    return name[:i] + name[i + 1 :]


@dataclass(frozen=True)
class TextPlan:
    """Which cues one listing's text shows; decided by the generator, rendered here.

    counterfeit_words: "" (none), "title", "description" or "both".
    obfuscation: "" or one of OBFUSCATIONS, applied to the brand name in the title.
    """

    language: str
    brand: str
    category: str
    line: str
    colour_key: str
    counterfeit_words: str = ""
    dupe_wording: bool = False
    obfuscation: str = ""
    reseller: bool = False
    parody_name: str = ""
    claims_original: bool = False
    noisy: bool = False
    honest_typo: bool = False
    signature: str = ""


@dataclass(frozen=True)
class ListingText:
    title: str
    description: str


def _pick(options: tuple[str, ...], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def _add_noise(title: str, rng: np.random.Generator) -> str:
    """Honest mess: shouting, lower case, emoji, doubled spaces, trailing exclamation marks."""
    kind = int(rng.integers(4))
    if kind == 0:
        return title.upper()
    if kind == 1:
        return title.lower()
    if kind == 2:
        return f"{title} {_pick(('🔥', '✨', '!!!', '***', '⭐'), rng)}"
    return title.replace(" ", "  ", 1) + " !!"


def compose_text(plan: TextPlan, rng: np.random.Generator) -> ListingText:
    """Render a listing's title and description in `plan.language` with exactly the planned cues."""
    book = PHRASEBOOKS[plan.language]
    brand = plan.parody_name or plan.brand
    if plan.honest_typo:
        brand = honest_misspelling(brand, rng)
    if plan.obfuscation:
        brand = obfuscate_brand(brand, plan.obfuscation, rng)
    if plan.dupe_wording:
        brand = _pick(book.dupe_tags, rng).format(brand=brand)

    tags: list[str] = []
    if plan.counterfeit_words in ("title", "both"):
        tags.append(_pick(book.counterfeit_tags, rng))
    if plan.reseller:
        tags.append(_pick(book.reseller_tags, rng))
    if plan.parody_name:
        tags.append(book.parody_tag)
    if plan.claims_original:
        tags.append(_pick(book.claims, rng))
    if not tags or rng.random() < 0.4:
        tags.append(_pick(book.new_tags, rng))
    order = rng.permutation(len(tags))
    tag_text = " ".join(tags[int(i)] for i in order)

    template = _pick(book.title_templates, rng)
    title = template.format(
        brand=brand,
        line=plan.line,
        noun=_pick(book.nouns[plan.category], rng),
        colour=book.colours[COLOUR_KEYS.index(plan.colour_key)],
        tag=tag_text,
    )
    title = " ".join(title.replace(" - ", " – ").split())
    if plan.noisy:
        title = _add_noise(title, rng)

    picks = rng.choice(len(book.base_sentences), size=int(rng.integers(1, 3)), replace=False)
    sentences = [book.base_sentences[int(i)] for i in picks]
    if plan.counterfeit_words in ("description", "both"):
        sentences.insert(
            int(rng.integers(len(sentences) + 1)), _pick(book.counterfeit_sentences, rng)
        )
    if plan.reseller:
        sentences.insert(0, _pick(book.reseller_sentences, rng))
    if plan.parody_name:
        sentences.insert(0, _pick(book.parody_sentences, rng))
    if plan.noisy and rng.random() < 0.5:
        sentences.append(_pick(book.noise_sentences, rng))
    if plan.signature:
        sentences.append(plan.signature)
    separator = "" if plan.language == "ja" else " "
    description = separator.join(sentences).format(brand=plan.brand)
    return ListingText(title=title, description=description)
