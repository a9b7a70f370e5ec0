"""The grade rules of Circular 22/2021/TT-BGDĐT (Thông tư 22/2021/TT-BGDĐT, lower and upper
secondary), as pure functions on ``Decimal``: no database, no float.

Sources read (secondary copies of the Circular's text; quoted below as they give it):

- Scores (Điều 5): "Điểm đánh giá là số nguyên hoặc số thập phân được lấy đến chữ số thập phân
  thứ nhất sau khi làm tròn số", on a 0–10 scale. Comment-assessed subjects (đánh giá bằng nhận
  xét) are rated "Đạt" or "Chưa đạt": Giáo dục thể chất, Nghệ thuật, Âm nhạc, Mĩ thuật, Nội dung
  giáo dục của địa phương, Hoạt động trải nghiệm, hướng nghiệp.
- Regular assessments per term (ĐĐGtx) by the subject's yearly periods: "Môn học có 35
  tiết/năm học: 02 ĐĐGtx. Môn học có trên 35 tiết/năm học đến 70 tiết/năm học: 03 ĐĐGtx. Môn
  học có trên 70 tiết/năm học: 04 ĐĐGtx." One midterm (ĐĐGgk) and one final (ĐĐGck) per term.
- Điều 9 khoản 1 điểm a (comment-assessed subjects): in a term "Mức Đạt: Có đủ số lần kiểm tra,
  đánh giá theo quy định … và tất cả các lần được đánh giá mức Đạt. Mức Chưa đạt: Các trường hợp
  còn lại"; for the year "Mức Đạt: Kết quả học tập học kì II được đánh giá mức Đạt".
- Điều 9 khoản 1 điểm b: "ĐTBmhk = (TĐĐGtx + 2 x ĐĐGgk + 3 x ĐĐGck) / (Số ĐĐGtx + 5)" and
  "ĐTBmcn = (ĐTBmhkI + 2 x ĐTBmhkII) / 3", each taken to one decimal after rounding (half up).
- Điều 9 khoản 2 (the learning result of a term and of the year, one of four levels):
  a) "Mức Tốt: Tất cả các môn học đánh giá bằng nhận xét được đánh giá mức Đạt. Tất cả các môn học
     đánh giá bằng nhận xét kết hợp đánh giá bằng điểm số có ĐTBmhk, ĐTBmcn từ 6,5 điểm trở lên,
     trong đó có ít nhất 06 môn học có ĐTBmhk, ĐTBmcn đạt từ 8,0 điểm trở lên."
  b) "Mức Khá: Tất cả các môn học đánh giá bằng nhận xét được đánh giá mức Đạt. Tất cả các môn học
     … có ĐTBmhk, ĐTBmcn từ 5,0 điểm trở lên, trong đó có ít nhất 06 môn học có ĐTBmhk, ĐTBmcn
     đạt từ 6,5 điểm trở lên."
  c) "Mức Đạt: Có nhiều nhất 01 (một) môn học đánh giá bằng nhận xét được đánh giá mức Chưa đạt.
     Có ít nhất 06 môn học … có ĐTBmhk, ĐTBmcn từ 5,0 điểm trở lên; không có môn học nào có
     ĐTBmhk, ĐTBmcn dưới 3,5 điểm."
  d) "Mức Chưa đạt: Các trường hợp còn lại."
- Điều 9 khoản 3: "Nếu mức đánh giá kết quả học tập của học kì, cả năm học bị thấp xuống từ 02
  (hai) mức trở lên so với mức đánh giá quy định tại điểm a, điểm b khoản 2 Điều này chỉ do kết
  quả đánh giá của duy nhất 01 (một) môn học thì mức đánh giá kết quả học tập của học kì đó, cả
  năm học đó được điều chỉnh lên mức liền kề."

How khoản 3 is read here: a subject "alone" pulled the result down when the other subjects,
without it, meet level a (Tốt) or b (Khá), and the result with it is at least two levels lower;
the result is then raised one level (Tốt → Đạt becomes Khá; Tốt or Khá → Chưa đạt becomes Đạt).
The subject may be scored or comment-assessed (the clause says "môn học", any subject).
"""
from __future__ import annotations

import decimal
import unicodedata
from decimal import Decimal
from typing import Iterable, Sequence

TENTH = Decimal("0.1")
ZERO, TEN = Decimal(0), Decimal(10)
PASS, FAIL = "Đ", "CĐ"  # Đạt / Chưa đạt of a comment-assessed subject
LEVELS = ("Tốt", "Khá", "Đạt", "Chưa đạt")  # best first: "mức liền kề" is the neighbour in this list
MIN_SUBJECTS = 6  # "ít nhất 06 môn học"

#: comment-assessed subjects (Điều 5), compared after ``subject_key``
COMMENT_SUBJECTS = ("Giáo dục thể chất", "Thể dục", "Nghệ thuật", "Âm nhạc", "Mĩ thuật", "Mỹ thuật",
                    "Nội dung giáo dục của địa phương", "Nội dung giáo dục địa phương", "Giáo dục địa phương",
                    "Hoạt động trải nghiệm, hướng nghiệp", "Hoạt động trải nghiệm hướng nghiệp",
                    "Hoạt động trải nghiệm")


def subject_key(name: str) -> str:
    """Compare subject names: NFC, case-folded, inner spaces collapsed."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


_COMMENT_KEYS = frozenset(subject_key(s) for s in COMMENT_SUBJECTS)


def is_comment_subject(name: str) -> bool:
    return subject_key(name) in _COMMENT_KEYS


def regular_slots(yearly_periods: int) -> int:
    """Regular assessments per term: up to 35 periods a year → 2, 36–70 → 3, over 70 → 4."""
    if yearly_periods <= 35:
        return 2
    if yearly_periods <= 70:
        return 3
    return 4


def round_half_up(value: Decimal) -> Decimal:
    """One decimal, half up (8.25 → 8.3), as the Circular's "làm tròn số"; never float ``round``."""
    return value.quantize(TENTH, rounding=decimal.ROUND_HALF_UP)


def parse_score(value) -> Decimal:
    """A score from JSON (number or text): 0–10, at most one decimal; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValueError("A score is a number from 0 to 10.")
    text = value.strip() if isinstance(value, str) else str(value)  # str(float) is its shortest repr
    try:
        score = Decimal(text)
    except decimal.InvalidOperation as exc:
        raise ValueError("A score is a number from 0 to 10.") from exc
    if not score.is_finite() or score < ZERO or score > TEN:
        raise ValueError("A score is from 0 to 10.")
    if score != score.quantize(TENTH, rounding=decimal.ROUND_DOWN):
        raise ValueError("A score has at most one decimal.")
    return score.quantize(TENTH) + ZERO  # + 0 turns "-0" into 0.0


def parse_mark(value) -> str:
    """``Đ`` or ``CĐ`` (also ``Đạt`` / ``Chưa đạt``) for a comment-assessed subject."""
    if isinstance(value, str):
        key = subject_key(value)
        if key in ("đ", "đạt"):
            return PASS
        if key in ("cđ", "chưa đạt"):
            return FAIL
    raise ValueError('A comment-assessed subject takes "Đ" (Đạt) or "CĐ" (Chưa đạt).')


def term_average(regular: Sequence[Decimal], midterm: Decimal, final: Decimal) -> Decimal:
    """ĐTBmhk = (Σ regular + 2·midterm + 3·final) / (number of regular + 5), half up to one decimal."""
    if not regular:
        raise ValueError("at least one regular assessment")
    with decimal.localcontext() as ctx:
        ctx.prec = 50
        total = sum(regular, ZERO) + 2 * midterm + 3 * final
        return round_half_up(total / (len(regular) + 5))


def year_average(term1: Decimal, term2: Decimal) -> Decimal:
    """ĐTBmcn = (ĐTBmhkI + 2·ĐTBmhkII) / 3, half up to one decimal."""
    with decimal.localcontext() as ctx:
        ctx.prec = 50
        return round_half_up((term1 + 2 * term2) / 3)


def comment_term_result(marks: Sequence[str], required: int) -> str:
    """Điều 9.1.a: Đạt when every required assessment is there and all are Đạt."""
    return PASS if len(marks) >= required and all(m == PASS for m in marks) else FAIL


def comment_year_result(term1: str | None, term2: str) -> str:
    """Điều 9.1.a: the year is the result of term II."""
    return term2


# --- the learning result (Điều 9 khoản 2 and 3) -----------------------------------------------
def _count(scores: Iterable[Decimal], at_least: Decimal) -> int:
    return sum(1 for s in scores if s >= at_least)


def _meets(level: str, scores: list[Decimal], marks: list[str]) -> bool:
    fails = sum(1 for m in marks if m != PASS)
    lowest = min(scores) if scores else None
    if level == "Tốt":  # khoản 2 điểm a
        return (fails == 0 and (lowest is None or lowest >= Decimal("6.5"))
                and _count(scores, Decimal("8.0")) >= MIN_SUBJECTS)
    if level == "Khá":  # khoản 2 điểm b
        return (fails == 0 and (lowest is None or lowest >= Decimal("5.0"))
                and _count(scores, Decimal("6.5")) >= MIN_SUBJECTS)
    if level == "Đạt":  # khoản 2 điểm c
        return (fails <= 1 and _count(scores, Decimal("5.0")) >= MIN_SUBJECTS
                and (lowest is None or lowest >= Decimal("3.5")))
    return True  # điểm d: every other case


def level_by_clause_2(scores: Sequence[Decimal], marks: Sequence[str]) -> str:
    """The level of Điều 9 khoản 2 alone (no adjustment)."""
    scores, marks = list(scores), list(marks)
    return next(level for level in LEVELS if _meets(level, scores, marks))


def learning_result_detail(scores: Sequence[Decimal], marks: Sequence[str]) -> tuple[str, str, int | None]:
    """``(result, level by khoản 2, index of the lifting subject or None)``.

    ``scores``: the averages (ĐTBmhk for a term, ĐTBmcn for the year) of the scored subjects;
    ``marks``: ``Đ``/``CĐ`` of the comment-assessed ones. A subject index counts scored subjects
    first, then comment-assessed ones.
    """
    scores, marks = list(scores), list(marks)
    base = level_by_clause_2(scores, marks)
    rank = LEVELS.index(base)
    culprits = []
    subjects = [("score", i) for i in range(len(scores))] + [("mark", i) for i in range(len(marks))]
    for index, (which, i) in enumerate(subjects):
        other_scores = scores[:i] + scores[i + 1:] if which == "score" else scores
        other_marks = marks[:i] + marks[i + 1:] if which == "mark" else marks
        best = next(level for level in LEVELS if _meets(level, other_scores, other_marks))
        if best in ("Tốt", "Khá") and rank - LEVELS.index(best) >= 2:
            culprits.append(index)
    if len(culprits) == 1:  # "chỉ do kết quả đánh giá của duy nhất 01 (một) môn học"
        return LEVELS[rank - 1], base, culprits[0]
    return base, base, None


def learning_result(scores: Sequence[Decimal], marks: Sequence[str]) -> str:
    """The learning result (Tốt, Khá, Đạt, Chưa đạt) by Điều 9 khoản 2 with the khoản 3 lift."""
    return learning_result_detail(scores, marks)[0]
