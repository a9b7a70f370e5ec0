"""Circular 22/2021/TT-BGDĐT on hand-worked cases: weights, half-up rounding, the year average,
every learning-result level (Article 9, clause 2) and the one-subject lift (clause 3)."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from contactbook.logic import circular22 as c22


def d(*values):
    return [D(str(v)) for v in values]


# --- scores -------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [(0, "0.0"), (10, "10.0"), (8.5, "8.5"), ("7.3", "7.3"), ("9", "9.0"),
                                             (" 6.5 ", "6.5"), ("8.50", "8.5"), ("-0", "0.0")])
def test_scores_zero_to_ten_with_one_decimal(value, expected):
    assert str(c22.parse_score(value)) == expected


@pytest.mark.parametrize("value", [-0.1, 10.1, 11, 8.25, "8.25", "7.05", "abc", "", None, True, "NaN", "Infinity", [8]])
def test_bad_scores_are_refused(value):
    with pytest.raises(ValueError):
        c22.parse_score(value)


def test_comment_marks():
    assert [c22.parse_mark(v) for v in ("Đ", "CĐ", "Đạt", "chưa đạt")] == ["Đ", "CĐ", "Đ", "CĐ"]
    for bad in ("D", "8", 8, None, "Tốt"):
        with pytest.raises(ValueError):
            c22.parse_mark(bad)


def test_comment_subjects_and_regular_slots():
    for name in ("Giáo dục thể chất", "Âm nhạc", "Mĩ thuật", "mỹ thuật", "Nghệ thuật",
                 "Nội dung giáo dục của địa phương", "Hoạt động trải nghiệm, hướng nghiệp"):
        assert c22.is_comment_subject(name), name
    for name in ("Toán", "Ngữ văn", "Tiếng Anh", "Khoa học tự nhiên"):
        assert not c22.is_comment_subject(name)
    assert [c22.regular_slots(p) for p in (35, 36, 70, 71, 105, 140)] == [2, 3, 3, 4, 4, 4]


# --- averages ----------------------------------------------------------------------------------
def test_term_average_weights_regular_one_midterm_two_final_three():
    # (7 + 8 + 2·6 + 3·9) / (2 + 5) = 54 / 7 = 7.714… → 7.7
    assert c22.term_average(d(7, 8), D(6), D(9)) == D("7.7")
    # (5 + 6 + 7 + 8 + 2·9 + 3·10) / (4 + 5) = 74 / 9 = 8.222… → 8.2
    assert c22.term_average(d(5, 6, 7, 8), D(9), D(10)) == D("8.2")
    # the final weighs three times a regular score: swapping them moves the average
    assert c22.term_average(d(10, 10), D(10), D(4)) == D("7.4")  # 52 / 7 = 7.43
    assert c22.term_average(d(4, 10), D(10), D(10)) == D("9.1")  # 64 / 7 = 9.14


def test_term_average_rounds_half_up_where_float_round_does_not():
    # (8 + 8 + 8 + 2·9 + 3·8) / 8 = 66 / 8 = 8.25 exactly → 8.3 (float round gives 8.2)
    assert c22.term_average(d(8, 8, 8), D(9), D(8)) == D("8.3")
    assert round((8 + 8 + 8 + 2 * 9 + 3 * 8) / 8, 1) == 8.2
    # (6.0 + 6.0 + 6.8 + 2·7 + 3·6) / 8 = 50.8 / 8 = 6.35 → 6.4; in floats 6.35 is 6.3499… → 6.3
    assert c22.term_average(d(6.0, 6.0, 6.8), D(7), D(6)) == D("6.4")
    assert round((6.0 + 6.0 + 6.8 + 2 * 7 + 3 * 6) / 8, 1) == 6.3
    assert c22.round_half_up(D("8.25")) == D("8.3") and c22.round_half_up(D("8.24")) == D("8.2")


def test_year_average_counts_term_two_twice():
    assert c22.year_average(D("6.0"), D("7.0")) == D("6.7")  # 20 / 3 = 6.67
    assert c22.year_average(D("8.3"), D("8.2")) == D("8.2")  # 24.7 / 3 = 8.23
    assert c22.year_average(D("9.0"), D("6.0")) == D("7.0")  # 21 / 3
    assert c22.year_average(D("5.5"), D("8.0")) == D("7.2")  # 21.5 / 3 = 7.17


def test_comment_subject_results():
    assert c22.comment_term_result(["Đ", "Đ", "Đ", "Đ"], 4) == "Đ"
    assert c22.comment_term_result(["Đ", "CĐ", "Đ", "Đ"], 4) == "CĐ"
    assert c22.comment_term_result(["Đ", "Đ", "Đ"], 4) == "CĐ"  # not every required assessment
    assert c22.comment_year_result("CĐ", "Đ") == "Đ"  # the year is term II's


# --- the learning result (Article 9, clause 2) ----------------------------------------------------
def detail(scores, marks=("Đ", "Đ")):
    return c22.learning_result_detail(d(*scores), list(marks))


def test_tot_all_comment_subjects_pass_all_at_least_6_5_and_six_at_least_8():
    assert detail([8.0, 8.5, 9.0, 8.0, 8.2, 8.0, 6.5, 7.0]) == ("Tốt", "Tốt", None)


def test_only_five_at_8_is_kha():
    assert detail([8.0, 8.5, 9.0, 8.0, 8.2, 7.9, 6.5, 7.0]) == ("Khá", "Khá", None)


def test_one_subject_under_6_5_is_kha_one_level_down_no_lift():
    assert detail([9, 9, 9, 9, 9, 9, 8, 6.4]) == ("Khá", "Khá", None)


def test_kha_all_at_least_5_and_six_at_least_6_5():
    assert detail([6.5, 6.5, 6.5, 6.5, 6.5, 6.5, 5.0, 5.0]) == ("Khá", "Khá", None)


def test_only_five_at_6_5_is_dat():
    assert detail([6.5, 6.5, 6.5, 6.5, 6.5, 6.4, 5.0, 5.0]) == ("Đạt", "Đạt", None)


def test_dat_with_one_comment_subject_failed_and_scores_down_to_3_5():
    assert detail([5, 5, 5, 5, 5, 5, 4.0, 3.5], ("Đ", "CĐ")) == ("Đạt", "Đạt", None)


def test_two_comment_subjects_failed_is_chua_dat():
    assert detail([9, 9, 9, 9, 9, 9, 9, 9], ("CĐ", "CĐ")) == ("Chưa đạt", "Chưa đạt", None)


def test_a_subject_under_3_5_is_chua_dat():
    assert detail([6, 6, 6, 6, 6, 6, 4.0, 3.4]) == ("Chưa đạt", "Chưa đạt", None)


def test_fewer_than_six_at_5_is_chua_dat():
    assert detail([5, 5, 5, 5, 5, 4.9, 4.9, 4.9]) == ("Chưa đạt", "Chưa đạt", None)


# --- the lift (Article 9, clause 3) -------------------------------------------------------------
def test_tot_pulled_to_dat_by_one_subject_is_lifted_to_kha():
    # without the 4.0 the others are Tốt; with it: not ≥ 6.5, not ≥ 5.0 → Đạt (two levels down)
    assert detail([9, 9, 9, 9, 9, 9, 8, 4.0]) == ("Khá", "Đạt", 7)


def test_tot_pulled_to_chua_dat_by_one_subject_is_lifted_to_dat():
    # 3.0 < 3.5: Chưa đạt (three levels under Tốt); lifted one level, to Đạt
    assert detail([9, 9, 9, 9, 9, 9, 8, 3.0]) == ("Đạt", "Chưa đạt", 7)


def test_kha_pulled_to_chua_dat_by_one_subject_is_lifted_to_dat():
    assert detail([7, 7, 7, 7, 7, 7, 6, 3.0]) == ("Đạt", "Chưa đạt", 7)


def test_one_failed_comment_subject_alone_lifts_tot_from_dat_to_kha():
    assert detail([9, 9, 9, 9, 9, 9, 9, 9], ("Đ", "CĐ")) == ("Khá", "Đạt", 9)


def test_the_lifting_subject_may_be_needed_by_the_count():
    # seven subjects: removing the 3.0 leaves exactly six at 8.0 or more
    assert detail([8, 8, 8, 8, 8, 8, 3.0]) == ("Đạt", "Chưa đạt", 6)


def test_no_lift_when_two_subjects_pull_it_down():
    assert detail([9, 9, 9, 9, 9, 9, 4.0, 4.0]) == ("Đạt", "Đạt", None)
    assert detail([9, 9, 9, 9, 9, 9, 9, 4.0], ("Đ", "CĐ")) == ("Đạt", "Đạt", None)


def test_no_lift_when_only_one_level_down():
    assert detail([7, 7, 7, 7, 7, 7, 4.0]) == ("Đạt", "Đạt", None)  # Khá-level others, Đạt: one level
    assert detail([9, 9, 9, 9, 9, 9, 6.0]) == ("Khá", "Khá", None)  # Tốt-level others, Khá: one level


def test_no_lift_when_the_others_are_not_tot_or_kha():
    # without the 3.0 the others are only Đạt (4.0 < 5.0): clause 3 looks at levels a and b only
    assert detail([6, 6, 6, 6, 6, 6, 4.0, 3.0]) == ("Chưa đạt", "Chưa đạt", None)


def test_learning_result_returns_the_level():
    assert c22.learning_result(d(9, 9, 9, 9, 9, 9, 8, 4.0), ["Đ"]) == "Khá"
