-- Applied by `wisp deploy` (in one transaction with any other pending migration, recorded in the database).
CREATE TABLE notes (
    id INTEGER PRIMARY KEY,
    body TEXT NOT NULL
);
