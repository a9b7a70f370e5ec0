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
