# The fan-out's hot write (issue 14): a notification row enters only the indexes reads need.
# Dropped: user_id and announcement_id alone (the (user_id, in_inbox, id) and (announcement_id,
# user_id) indexes lead with them), push_attempt's notification_id alone (its unique
# (notification_id, device_id) leads with it). Partial: each row's unique key (a row has an
# announcement or a dedupe key, never both) and the held pushes' index (few rows are held).
# The new unique indexes are made before the old ones go, so uniqueness holds throughout.

NEW = [
    "CREATE UNIQUE INDEX IF NOT EXISTS notification_unique_announcement_user ON notification (announcement_id, user_id) "
    "WHERE announcement_id IS NOT NULL",
    "CREATE UNIQUE INDEX IF NOT EXISTS notification_unique_dedupe_key_user ON notification (dedupe_key, user_id) "
    "WHERE dedupe_key IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS notification_held_push_after ON notification (push_after) WHERE push_status = 'held'",
]
OLD = ["notification_announcement_id_user_id", "notification_dedupe_key_user_id", "notification_push_status_push_after",
       "notification_user_id", "notification_announcement_id", "pushattempt_notification_id"]


def up(migrator, db):
    for sql in NEW:
        db.execute_sql(sql)
    for name in OLD:
        db.execute_sql(f"DROP INDEX IF EXISTS {name}")


def down(migrator, db):
    db.execute_sql("CREATE UNIQUE INDEX IF NOT EXISTS notification_announcement_id_user_id ON notification "
                   "(announcement_id, user_id)")
    db.execute_sql("CREATE UNIQUE INDEX IF NOT EXISTS notification_dedupe_key_user_id ON notification (dedupe_key, user_id)")
    db.execute_sql("CREATE INDEX IF NOT EXISTS notification_push_status_push_after ON notification (push_status, push_after)")
    db.execute_sql("CREATE INDEX IF NOT EXISTS notification_user_id ON notification (user_id)")
    db.execute_sql("CREATE INDEX IF NOT EXISTS notification_announcement_id ON notification (announcement_id)")
    db.execute_sql("CREATE INDEX IF NOT EXISTS pushattempt_notification_id ON push_attempt (notification_id)")
    for name in ("notification_unique_announcement_user", "notification_unique_dedupe_key_user",
                 "notification_held_push_after"):
        db.execute_sql(f"DROP INDEX IF EXISTS {name}")
