import pytest

from headstart._registry import Registry


def test_register_and_get():
    reg = Registry("thing")
    reg.register("a")(int)
    assert reg.get("a") is int and "a" in reg and reg.list() == ["a"]


def test_duplicate_name_is_refused():
    reg = Registry("thing")
    reg.register("a")(int)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(float)


def test_unknown_name_lists_known_ones():
    reg = Registry("head")
    reg.register("linear")(int)
    with pytest.raises(KeyError, match="unknown head 'mlp'; known: linear"):
        reg.get("mlp")
