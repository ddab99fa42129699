"""The translation task: English number words <-> Chinese numerals.

Every number in 0..9999, generated rather than collected. The functions are
the ground truth: :func:`english_words` and :func:`chinese_numeral` write
every number, :func:`parse_chinese` reads a numeral back, :func:`number_split`
holds out a fixed random set of numbers and :func:`translation_pairs` makes
the (source, target) strings in either direction.

>>> translation_pairs([321])
[('three hundred and twenty-one', '三百二十一')]
>>> translation_pairs([1001], direction="zh-en")
[('一千零一', 'one thousand and one')]
"""

import random

__all__ = [
    "MAX_NUMBER",
    "english_words",
    "chinese_numeral",
    "parse_chinese",
    "number_split",
    "translation_pairs",
]

MAX_NUMBER = 9999
_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = [
    "",
    "",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
]
_DIGITS = "零一二三四五六七八九"
# for the digits of a four-digit number, left to right
_UNITS = [
    "千",
    "百",
    "十",
    "",
]


def _check_number(n) -> None:
    if (
        not isinstance(n, int)
        or isinstance(n, bool)
        or not 0 <= n <= MAX_NUMBER
    ):
        raise ValueError(
            f"expected an int in 0..{MAX_NUMBER}, got {n!r}; the number "
            f"tasks cover 0..{MAX_NUMBER}"
        )


def english_words(n: int) -> str:
    """``n`` in 0..9999 in British English words.

    321 -> "three hundred and twenty-one". Convention: "and" before the last
    part when a hundred or thousand precedes it (1001 -> "one thousand and
    one", 1100 -> "one thousand one hundred"); hyphens in 21..99
    ("forty-two"); no commas.
    """
    _check_number(n)
    if n == 0:
        return "zero"
    thousands, hundreds, rest = n // 1000, n // 100 % 10, n % 100
    parts = []
    if thousands:
        parts.append(f"{_ONES[thousands]} thousand")
    if hundreds:
        parts.append(f"{_ONES[hundreds]} hundred")
    if rest:
        tail = (
            _ONES[rest]
            if rest < 20
            else _TENS[rest // 10]
            + (f"-{_ONES[rest % 10]}" if rest % 10 else "")
        )
        parts.append(f"and {tail}" if parts else tail)
    return " ".join(parts)


def chinese_numeral(n: int) -> str:
    """``n`` in 0..9999 in Chinese numerals: 321 -> 三百二十一.

    Conventions: 10..19 alone drop the leading 一 (10 -> 十, 11 -> 十一),
    but inside a larger number the tens digit is always said
    (110 -> 一百一十, 1010 -> 一千零一十); a run of zeros between non-zero
    digits is read as one 零 (1001 -> 一千零一, 101 -> 一百零一) and
    trailing zeros are silent (1100 -> 一千一百); 2 is 二 in every place
    (not the colloquial 两).
    """
    _check_number(n)
    if n == 0:
        return "零"
    if 10 <= n <= 19:
        return "十" + (_DIGITS[n - 10] if n > 10 else "")
    digits = [int(d) for d in f"{n:04d}"]
    out, pending_zero, started = [], False, False
    for digit, unit in zip(digits, _UNITS):
        if digit == 0:
            # a zero counts only after the first non-zero digit
            pending_zero = started
            continue
        if pending_zero:
            out.append("零")
            pending_zero = False
        out.append(_DIGITS[digit] + unit)
        started = True
    return "".join(out)


def parse_chinese(text: str) -> int:
    """The value of a Chinese numeral written by :func:`chinese_numeral`.

    十一 -> 11, 一千零一 -> 1001.
    """
    if (
        not isinstance(text, str)
        or not text
        or any(c not in _DIGITS + "十百千" for c in text)
    ):
        raise ValueError(
            f"expected a Chinese numeral made of {_DIGITS}十百千, "
            f"got {text!r}"
        )
    value, digit = 0, None
    for c in text:
        if c in _DIGITS:
            digit = _DIGITS.index(c)
        else:
            place = {"十": 10, "百": 100, "千": 1000}[c]
            # a bare 十 means 一十
            value += (1 if digit is None else digit) * place
            digit = None
    return value + (digit or 0)


def number_split(
    n_test: int = 1000, seed: int = 0
) -> tuple[list[int], list[int]]:
    """(train, test): sorted lists of 0..9999, ``n_test`` held out at random.

    The draw uses its own ``random.Random(seed)``, so it is the same on every
    run and does not touch the global random state. Every number is in exactly
    one list.
    """
    total = MAX_NUMBER + 1
    if not isinstance(n_test, int) or not 0 < n_test < total:
        raise ValueError(
            f"n_test must be an int in 1..{total - 1}, got {n_test!r}"
        )
    test = set(random.Random(seed).sample(range(total), n_test))
    return [n for n in range(total) if n not in test], sorted(test)


def translation_pairs(
    numbers: list[int], direction: str = "en-zh"
) -> list[tuple[str, str]]:
    """(source, target) strings for ``numbers``.

    ``"en-zh"``: words -> numeral; ``"zh-en"``: numeral -> words.
    """
    if direction not in ("en-zh", "zh-en"):
        raise ValueError(
            f"direction must be 'en-zh' or 'zh-en', got {direction!r}"
        )
    pairs = [(english_words(n), chinese_numeral(n)) for n in numbers]
    return pairs if direction == "en-zh" else [(zh, en) for en, zh in pairs]
