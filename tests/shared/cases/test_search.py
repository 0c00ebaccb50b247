"""Reading the search box, and the name index."""

from __future__ import annotations

from shared.cases.search import Search, fold, name_terms, name_words, parse_search


def test_names_are_indexed_by_word_prefixes_and_word_pairs() -> None:
    assert fold("Nicolò ÀLVAREZ") == "nicolo alvarez"
    assert name_words("Nicolò D'Amico-Rossi") == ["nicolo", "d", "amico", "rossi", "damicorossi"]
    assert name_words("Maria 2 Rossi3") == ["maria"]
    assert name_terms("Ana Li") == {"an", "ana", "li", "ana l", "ana li", "li a", "li an", "li ana"}
    terms = name_terms("Maria Rossi")
    assert {"ma", "maria", "ro", "rossi", "maria r", "maria ross", "rossi mar"} <= terms
    assert "mar ross" not in terms
    assert max(len(t) for t in name_terms("Abcdefghijklmnopqrstuvwxyz Bianchi")) == 20
    assert name_terms("") == set()
    # Very long names pair only their first words.
    many = name_terms("Uno Due Tre Quattro Cinque Sei")
    assert "uno cinque" in many and "uno sei" not in many and "sei" in many


def test_a_search_text_is_read_every_way_it_can_be() -> None:
    assert parse_search("Maria  Rossi") == Search(words=("maria", "rossi"))
    assert parse_search("Maria  Rossi").name_terms() == ("maria rossi", ())
    assert parse_search("anna maria ross").name_terms() == ("anna ross", ("maria",))
    assert parse_search("rossi m").name_terms() == ("rossi m", ())
    assert parse_search("r maria").name_terms() == ("maria", ())
    assert parse_search("Nicolò D'Amico").words == ("nicolo", "damico")
    assert parse_search("ross ross").words == ("ross",)
    # Digits are never a name: a number is a phone or a code, and nothing else.
    assert parse_search("331 693 8049") == Search(phone="+393316938049")
    assert parse_search("+41 44 668 18 00").phone == "+41446681800"
    assert parse_search("12345").phone is None
    assert parse_search("rssmra85d03f205p").fiscal_code == "RSSMRA85D03F205P"
    assert parse_search("hk3 7pa").booking_code == "HK37PA"
    assert parse_search("ANDREA").booking_code == "ANDREA"
    assert parse_search("ANDREA").words == ("andrea",)
    assert parse_search("Rossi").booking_code is None
    assert parse_search("a").empty
    assert parse_search("   ").empty
    assert parse_search("").name_terms() is None
    assert parse_search("x" * 10_000).name_terms() == ("x" * 20, ())
