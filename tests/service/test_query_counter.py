from tests.support.queries import count_queries
def test_counter_counts(app, make):
    s = make.school()
    from service.roster.models import School
    with count_queries() as q:
        list(School.select())
        School.select().count()
    assert q.count == 2, str(q)
    with count_queries() as q2:
        pass
    assert q2.count == 0


def test_counter_counts_compound_queries(app, make):
    """PostgreSQL's UNION opens with a parenthesis: ``(SELECT ...) UNION (SELECT ...)``."""
    make.school()
    from service.roster.models import School
    with count_queries() as q:
        list((School.select(School.id) | School.select(School.id)).tuples())
    assert q.count == 1, str(q)
