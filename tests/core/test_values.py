"""Values as people write them, normalised (lmstudio_agent.model.smallmodel.values): each style the constrained mode offers."""

from __future__ import annotations

import datetime as dt

import pytest

from lmstudio_agent.model.smallmodel import values

TODAY = dt.date(2026, 11, 30)  # a Monday


@pytest.mark.parametrize("text, expected", [
    ("I weigh 70kg and I'm 1.75m tall", [70, 1.75]),          # glued units
    ("The gas is at 298K", [298]),                             # K is kelvin, not thousands
    ("It costs $25", [25]),                                    # currency sign
    ("€1,250.50 in total", [1250.5]),
    ("Population 2,000,000 people", [2000000]),               # thousands separators
    ("Interest of 8% a year", [8, 0.08]),                      # a percentage: the number and the fraction
    ("a rate of 3.5 percent", [3.5, 0.035]),
    ("three apples and a dozen eggs", [3, 12]),                # number words
    ("twenty-five people", [25]),
    ("a hundred and five", [105]),
    ("two thousand five hundred", [2500]),
    ("half a dozen", [6]),
    ("starts from rest", [0]),                                 # implied values
    ("$2.5M budget", [2.5, 2500000]),                          # scale suffixes and words
    ("2.5 million users", [2.5, 2500000]),
    ("I need 3k", [3, 3000]),
    ("Convert 2044.02 CHF, a 5-minute timer, -3 degrees, v1.2", [2044.02, 5, -3]),
    ("order A-1 for 3 people", [3]),                           # a code is not a number
])
def test_numbers_as_written(text, expected):
    assert values.numbers([text]) == expected


def test_numbers_keep_their_type():
    found = values.numbers(["2 and 2.0 and 2.5"])
    assert found == [2, 2.5] and isinstance(found[0], int)


@pytest.mark.parametrize("text, expected", [
    ("August 16, 2022", dt.date(2022, 8, 16)),
    ("on 16 Aug 2022", dt.date(2022, 8, 16)),
    ("the 16th of August, 2022", dt.date(2022, 8, 16)),
    ("08/16/2022", dt.date(2022, 8, 16)),                      # US order
    ("16/08/2022", dt.date(2022, 8, 16)),                      # day first when it cannot be a month
    ("2022-08-16", dt.date(2022, 8, 16)),
    ("March 3rd", dt.date(2027, 3, 3)),                        # no year: the next one
    ("tomorrow", dt.date(2026, 12, 1)),
    ("next Friday", dt.date(2026, 12, 4)),
    ("in 3 days", dt.date(2026, 12, 3)),
    ("in two weeks", dt.date(2026, 12, 14)),
])
def test_dates_in_words_and_numbers(text, expected):
    assert values.dates([text], TODAY) == [expected]


def test_words_that_look_like_months_are_not_dates():
    assert values.dates(["May I ask you something?", "March on"], TODAY) == []


def test_times_and_date_times():
    assert values.times(["at 3pm", "3:30 p.m.", "15:45", "noon"]) == [
        dt.time(15), dt.time(15, 30), dt.time(15, 45), dt.time(12)]
    assert values.date_times(["on August 16, 2022 at 9am"], TODAY) == [dt.datetime(2022, 8, 16, 9)]


def test_codes_for_currency_country_state_and_language_names():
    found = values.codes(["Convert 100 US dollars to euros", "Ship it to California from Japan",
                          "Translate it into German", "Canadian dollars please"])
    assert found["currency"] == ["USD", "EUR", "CAD"]  # "dollars" inside "Canadian dollars" is CAD only
    assert found["country"] == ["JP", "JPN"]
    assert found["state"] == ["CA"]
    assert found["language"] == ["de"]


def test_common_words_are_not_currencies_without_money_in_sight():
    assert values.codes(["I won the game, try again"])["currency"] == []
    assert values.codes(["Convert 5000 won to dollars"])["currency"] == ["KRW", "USD"]


def test_words_to_number():
    assert values.words_to_number(["twenty-five", "people"]) == (25, 1)
    assert values.words_to_number(["one", "hundred", "and", "two"]) == (102, 4)
    assert values.words_to_number(["people"]) == (0, 0)
