"""Language detection names the language of clear sentences and stays offline."""

from __future__ import annotations

import pytest

from ipguard.text.language import DEFAULT_LANGUAGES, detect_language, detect_languages

SENTENCES = {
    "en": "This leather handbag comes with the original box and a certificate.",
    "es": "Este bolso de cuero viene con la caja original y un certificado.",
    "pt": "Esta bolsa de couro vem com a caixa original e um certificado de garantia.",
    "de": "Diese Ledertasche wird mit der Originalverpackung und einem Zertifikat geliefert.",
    "fr": "Ce sac en cuir est livré avec la boîte d'origine et un certificat.",
    "ja": "この革のバッグには元の箱と証明書が付いています。",
}


@pytest.mark.parametrize("language", sorted(SENTENCES))
def test_clear_sentence_is_detected_in_its_language(language: str) -> None:
    assert detect_language(SENTENCES[language]) == language


@pytest.mark.parametrize("text", [None, "", "   ", "12345 !!", "🔥🔥💯", float("nan")])
def test_text_without_letters_has_no_language(text: object) -> None:
    assert detect_language(text) is None  # type: ignore[arg-type]


def test_default_language_set_covers_the_marketplace() -> None:
    expected = {"en", "es", "pt", "de", "fr", "it", "nl", "ja", "zh", "ko", "ru", "tr", "pl", "ar"}
    assert expected <= set(DEFAULT_LANGUAGES)


def test_answer_is_restricted_to_the_configured_languages() -> None:
    answer = detect_language(SENTENCES["pt"], languages=["en", "es"])
    assert answer in {"en", "es"}
    assert detect_language(SENTENCES["pt"], languages=["en", "pt"]) == "pt"


def test_unknown_language_code_is_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="xx"):
        detect_language("hello world", languages=["en", "xx"])


def test_batch_detection_keeps_order_and_missing_values() -> None:
    texts = [SENTENCES["fr"], None, SENTENCES["de"]]
    assert detect_languages(texts) == ["fr", None, "de"]
